# Stand-in for the SDK's rules.mk (tests only): what openwrt/Makefile uses of it, with the
# SDK's install modes (INSTALL_CONF is 0600 there too).
INCLUDE_DIR:=$(TOPDIR)/include
INSTALL_DIR:=install -d -m0755
INSTALL_BIN:=install -m0755
INSTALL_DATA:=install -m0644
INSTALL_CONF:=install -m0600
