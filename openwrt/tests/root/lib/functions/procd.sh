# Stand-in for OpenWrt's /lib/functions/procd.sh (tests only; Debian has no procd/ubus):
# every call is appended to $TEST_RECORD, one line each, instead of going to procd.
# procd_running answers from $TEST_RUNNING (1: the instance is running).

procd_rec() { printf '%s\n' "$*" >>"$TEST_RECORD"; }

procd_open_service() { procd_rec "open_service $*"; }
procd_close_service() {
	service_triggers	# as the real one: triggers go with the service
	procd_rec "close_service"
}
procd_open_instance() { procd_rec "open_instance $*"; }
procd_set_param() { procd_rec "set_param $*"; }
procd_append_param() { procd_rec "append_param $*"; }
procd_close_instance() { procd_rec "close_instance"; }
procd_add_reload_trigger() { procd_rec "reload_trigger $*"; }
procd_add_interface_trigger() { procd_rec "interface_trigger $*"; }
procd_add_reload_interface_trigger() { procd_rec "reload_interface_trigger $*"; }
procd_send_signal() { procd_rec "send_signal $*"; }
procd_kill() { procd_rec "kill $*"; }
procd_running() { [ "${TEST_RUNNING:-0}" = 1 ]; }
