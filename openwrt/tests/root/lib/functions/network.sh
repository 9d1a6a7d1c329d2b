# Stand-in for OpenWrt's /lib/functions/network.sh (tests only; Debian has no netifd/ubus).
# $TEST_NETWORKS lists the networks that are up, one "network device" per line.

network_get_device() { # var network
	local __net __dev	# not `dev`: the caller's variable may have that name
	if [ -f "$TEST_NETWORKS" ]; then
		while read -r __net __dev; do
			if [ "$__net" = "$2" ]; then
				eval "$1=\$__dev"
				return 0
			fi
		done <"$TEST_NETWORKS"
	fi
	eval "$1="
	return 1
}
