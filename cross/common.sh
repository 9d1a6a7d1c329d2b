# Shared by the cross scripts (sourced, not run). Each function installs what it needs on a
# fresh machine, non-interactively, and is a no-op when it is already there.

# The nightly for -Zbuild-std (armv7 and mipsel have no prebuilt std on rustup's server).
# Pinned so a CI run next month builds the same thing; move it on purpose.
NIGHTLY=nightly-2026-10-01
# zig links the musl binaries (rust-lld alone cannot find a libc for these targets).
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1
# Where the zig venv lives between runs.
CROSS_CACHE=${VEIL_CROSS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/veilmesh-cross}

# Router binary budgets in bytes (stripped, static).
# ARM was 1.5 MiB until the onion layer (issue 10) took aarch64 past it at opt-level 2:
# 1 608 336 bytes on 2026-11-29; `s`/`z` would cost a third of the relay's speed
# (docs/benchmarks.md §5), so ARM gets the 2 MiB every router target has (OPENWRT.md).
BUDGET_ARM=2097152   # 2 MiB: aarch64, armv7
BUDGET_MIPS=2097152  # 2 MiB: mipsel

say() { printf 'cross: %s\n' "$*"; }

# Debian's qemu-user-static: runs the foreign binaries (binfmt_misc is not assumed).
need_qemu() {
    command -v "$1" >/dev/null 2>&1 && return
    say "installing qemu-user-static"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
}

# The pinned nightly with rust-src.
need_nightly() {
    if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 \
        || ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
        say "installing $NIGHTLY with rust-src"
        rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
    fi
}

# zig and cargo-zigbuild from PyPI in a venv; puts them on PATH.
need_zig() {
    local venv="$CROSS_CACHE/venv"
    [ -x "$venv/bin/pip" ] || { mkdir -p "$CROSS_CACHE" && python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check \
        "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
    export PATH="$venv/bin:$PATH"
}

# Flags every zig-linked musl build needs: link against zig's musl, not Rust's self-contained
# crt objects (the link fails on crt1.o otherwise), and statically (a dynamic mipsel binary
# segfaults under qemu and needs the image's exact musl on a router).
ZIG_RUSTFLAGS="-C link-self-contained=no -C target-feature=+crt-static"

# build_router TARGET [RUSTFLAGS...]: the router binary (daemon + operator CLI, no lab/sim)
# with std rebuilt for the target and for size.
build_router() {
    local target=$1
    shift
    # zig is told to search the toolchain's library directory for the target, which a
    # rust-src build never fills: an empty one spares a warning on every link.
    mkdir -p "$(rustup run "$NIGHTLY" rustc --print sysroot)/lib/rustlib/$target/lib"
    RUSTUP_TOOLCHAIN=$NIGHTLY RUSTFLAGS="$ZIG_RUSTFLAGS $*" cargo zigbuild \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size \
        --release --locked --no-default-features --target "$target"
}

# test_core TARGET QEMU: the library's unit tests under qemu-user, built the way the OpenWrt
# feed builds (panic = unwind, overflow checks on), so arithmetic on untrusted values is
# checked on the foreign target too. VEIL_UNDER_QEMU lets a test skip a documented qemu
# artifact.
test_core() {
    local target=$1 qemu=$2 runner_var
    runner_var="CARGO_TARGET_$(echo "$target" | tr 'a-z-' 'A-Z_')_RUNNER"
    env "$runner_var=$qemu" VEIL_UNDER_QEMU=1 \
        CARGO_PROFILE_RELEASE_PANIC=unwind CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true \
        RUSTUP_TOOLCHAIN=$NIGHTLY RUSTFLAGS="$ZIG_RUSTFLAGS" \
        cargo-zigbuild test -Zbuild-std --release --locked --lib --target "$target"
}

# check_router TARGET BUDGET QEMU: the freshly built router binary against its budget (fail
# when over it), kept as target/TARGET/veil-router (what the .ipks pack: a later test build
# cannot replace it), and run once under QEMU.
check_router() {
    local bin="target/$1/release/veil" size
    size=$(stat -c %s "$bin")
    say "$bin: $size bytes (budget $2, $(( (size * 100) / $2 ))% of it)"
    if [ "$size" -gt "$2" ]; then
        say "error: $bin is over its budget of $2 bytes" >&2
        return 1
    fi
    cp "$bin" "target/$1/veil-router"
    "$3" "$bin" --version
}
