# Stand-in for the SDK's package.mk (tests only). BuildPackage makes two targets:
#   stage  runs Package/NAME/install into $(STAGE) and, like the SDK, lists the conffiles
#          that are no files of the package in $(STAGE)/lib/upgrade/keep.d/NAME;
#   info   prints what the SDK would take from the Makefile.
# $(FAKE_INSTALL_DIR)/bin/ holds the binary `cargo install` would have put there.
PKG_INSTALL_DIR=$(FAKE_INSTALL_DIR)
PKG_BUILD_DIR=/build/$(PKG_NAME)-$(PKG_VERSION)

define BuildPackage
$(eval $(Package/$(1)))
stage:
	$(call Package/$(1)/install,$(STAGE))
	for f in $(strip $(Package/$(1)/conffiles)); do \
		[ -f "$(STAGE)$$$$f" ] && continue; \
		mkdir -p $(STAGE)/lib/upgrade/keep.d; \
		echo "$$$$f" >>$(STAGE)/lib/upgrade/keep.d/$(1); \
	done

info:
	@echo 'PKG_NAME=$(PKG_NAME)'
	@echo 'PKG_VERSION=$(PKG_VERSION)'
	@echo 'PKG_RELEASE=$(PKG_RELEASE)'
	@echo 'PKG_BUILD_DEPENDS=$(PKG_BUILD_DEPENDS)'
	@echo 'PKG_LICENSE=$(PKG_LICENSE)'
	@echo 'DEPENDS=$(DEPENDS)'
	@echo 'SECTION=$(SECTION)'
	@echo 'CONFFILES=$(strip $(Package/$(1)/conffiles))'
	@echo 'CARGO=$(strip $(CARGO_COMMAND))'
	@echo 'DEFAULT_INSTALL=$(RUST_DEFAULT_INSTALL_$(1))'
endef
