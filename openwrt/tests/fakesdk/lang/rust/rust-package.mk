# Stand-in for the packages feed's lang/rust/rust-package.mk (tests only): the variables a
# package sees, and the `cargo install` command line the real Build/Compile runs, built the
# same way (features from RUST_PKG_FEATURES, then CARGO_PKG_ARGS with --locked first).
RUST_ARCH_DEPENDS:=@(aarch64||arm||mipsel||x86_64)
RUST_PKG_LOCKED ?= 1
CARGO_PKG_ARGS=
ifeq ($(strip $(RUST_PKG_LOCKED)),1)
  CARGO_PKG_ARGS+= --locked
endif
CARGO_COMMAND=cargo install -v --profile release \
	$(if $(strip $(RUST_PKG_FEATURES)),--features "$(strip $(RUST_PKG_FEATURES))") \
	--root $(PKG_INSTALL_DIR) --path "$(PKG_BUILD_DIR)" $(CARGO_PKG_ARGS)

# The real RustBinPackage installs every binary to /usr/bin unless the package has its own
# Package/NAME/install; say which happened.
define RustBinPackage
  ifndef Package/$(1)/install
    RUST_DEFAULT_INSTALL_$(1):=yes
  endif
endef
