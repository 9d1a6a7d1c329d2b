# Stand-in for OpenWrt's /lib/functions.sh (tests only; Debian has no uci): the UCI reading
# functions the init script uses, plus default_postinst/default_prerm that record their call.
# A UCI file is parsed by ../../uci2sh into config/option/list calls, as `uci export` is.

CONFIG_SECTIONS=
CONFIG_SECTION=
CONFIG_ANON=0
CONFIG_LIST_STATE=

reset_cb() {
	config_cb() { return 0; }
	option_cb() { return 0; }
	list_cb() { return 0; }
}
reset_cb

config() { # type [name]
	local name="$2"
	if [ -z "$name" ]; then
		CONFIG_ANON=$((CONFIG_ANON + 1))
		name="cfg$CONFIG_ANON"
	fi
	CONFIG_SECTION=$name
	CONFIG_SECTIONS="${CONFIG_SECTIONS:+$CONFIG_SECTIONS }$name"
	eval "CONFIG_${name}_TYPE=\$1"
	config_cb "$1" "$name"
}

option() { # name value
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
	option_cb "$1" "$2"
}

list() { # name value: items _ITEM1.._ITEMn, their number _LENGTH, all of them space-joined
	local len
	eval "len=\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0}"
	[ "$len" = 0 ] && CONFIG_LIST_STATE="$CONFIG_LIST_STATE ${CONFIG_SECTION}_$1"
	len=$((len + 1))
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$len=\$2"
	eval "CONFIG_${CONFIG_SECTION}_$1_LENGTH=$len"
	eval "CONFIG_${CONFIG_SECTION}_$1=\"\${CONFIG_${CONFIG_SECTION}_$1:+\$CONFIG_${CONFIG_SECTION}_$1 }\$2\""
	list_cb "$1" "$2"
}

config_load() { # package: read ${UCI_CONFIG_DIR:-/etc/config}/package
	local file="${UCI_CONFIG_DIR:-/etc/config}/$1" code v
	[ -f "$file" ] || return 1
	code=$(python3 "$UCI2SH" "$file") || return 1
	# As uci_load: lists start empty again (a second load must not append to them).
	for v in $CONFIG_LIST_STATE; do
		eval "CONFIG_${v}= CONFIG_${v}_LENGTH="
	done
	CONFIG_LIST_STATE=
	CONFIG_SECTIONS=
	eval "$code"
}

config_get() { # var section option [default] | section option (prints)
	if [ $# -ge 3 ]; then
		eval "$1=\${CONFIG_$2_$3:-\$4}"
	else
		eval "printf '%s\n' \"\${CONFIG_$1_$2:-}\""
	fi
}

config_get_bool() { # var section option [default]
	local v
	config_get v "$2" "$3" "$4"
	case "$v" in
	1 | on | true | yes | enabled) v=1 ;;
	0 | off | false | no | disabled) v=0 ;;
	*) v="$4" ;;
	esac
	eval "$1=\$v"
}

config_list_foreach() { # section option function [args]
	local section="$1" option="$2" fn="$3" len i=1 v
	shift 3
	config_get len "$section" "${option}_LENGTH"
	[ -n "$len" ] || return 0
	while [ "$i" -le "$len" ]; do
		config_get v "$section" "${option}_ITEM$i"
		"$fn" "$v" "$@"
		i=$((i + 1))
	done
}

config_foreach() { # function [type] [args]
	local fn="$1" type="${2:-}" s t
	[ $# -ge 2 ] && shift 2 || shift 1
	for s in $CONFIG_SECTIONS; do
		config_get t "$s" TYPE
		[ -z "$type" ] || [ "$t" = "$type" ] || continue
		"$fn" "$s" "$@"
	done
}

default_postinst() { echo "default_postinst $*" >>"$TEST_RECORD"; }
default_prerm() { echo "default_prerm $*" >>"$TEST_RECORD"; }
