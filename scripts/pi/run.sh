#!/usr/bin/env bash
# make test-pi: the device tests (tests/device) on ARM64 under qemu user-mode emulation, once as a
# Raspberry Pi 4 (Cortex-A72) and once as a Pi 5 (Cortex-A76), compared with the x86 outputs.
#
#   1. qemu-user-static from Debian's apt, when missing (needs root).
#   2. An arm64 Debian bookworm sysroot (Python 3.11, the Python of Raspberry Pi OS bookworm), built
#      with a private apt configuration (its own architecture, state and cache: the host's packages
#      stay untouched) and kept in the cache folder, so a rerun reuses it.
#   3. The device install into a site folder: aarch64 wheels of this project's [pi] extra plus
#      onnxruntime and pytest, the same releases as the host's venv, through the host's pip. No
#      TensorFlow, no onnx package.
#   4. The model files, a test video and reference.npz (the x86 outputs) exported on the host.
#   5. pytest tests/device under qemu-aarch64-static -cpu cortex-a72, then -cpu cortex-a76.
#      Never qemu's default -cpu max: its emulated SME gives wrong LiteRT int8 outputs.
#
# Emulation runs 30-400x slower than the hardware: its timings say nothing about a Pi.
# Where qemu or root is missing this says so in one line and exits 1 under CI, 0 elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PY=${EDGE_RCNN_HOST_PYTHON:-$REPO/.venv/bin/python}            # the host venv (TensorFlow, converters): exports the assets
CACHE=${EDGE_RCNN_PI_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/edge-rcnn/pi-sysroot}
CPUS=${PI_CPUS:-cortex-a72 cortex-a76}
SUITE=bookworm
GLIBC=36                                          # bookworm's glibc 2.36: wheels for it and any older manylinux
PLATFORM=manylinux_2_${GLIBC}_aarch64
PYVER=3.11

skip() {  # one line naming what is missing; fails CI, not a developer's `make test-pi`
    echo "test-pi: not run: $1" >&2
    if [ -n "${CI:-}" ]; then exit 1; fi
    exit 0
}

# ---------------------------------------------------------------- 1. qemu
QEMU=$(command -v qemu-aarch64-static || true)
if [ -z "$QEMU" ]; then
    [ "$(id -u)" = 0 ] || skip "qemu-aarch64-static (Debian package qemu-user-static) is not installed and installing it needs root"
    command -v apt-get >/dev/null || skip "qemu-aarch64-static is not installed and there is no apt-get to install qemu-user-static"
    echo "test-pi: installing qemu-user-static"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static; } >"${TMPDIR:-/tmp}/test-pi-apt.log" 2>&1 \
        || skip "qemu-user-static: apt-get install failed (no network to Debian's mirror?); see ${TMPDIR:-/tmp}/test-pi-apt.log"
    QEMU=$(command -v qemu-aarch64-static || true)
    [ -n "$QEMU" ] || skip "qemu-aarch64-static: not found after installing qemu-user-static"
fi
[ -x "$PY" ] || skip "$PY: the host venv that exports the test models (run make test once to create it)"

# ---------------------------------------------------------------- 2. the arm64 sysroot
SYSROOT=$CACHE/sysroot
DEBS="python$PYVER libstdc++6 libgcc-s1 zlib1g"
if [ "$(cat "$SYSROOT/.packages" 2>/dev/null)" != "$SUITE $DEBS" ]; then
    echo "test-pi: building the arm64 $SUITE sysroot in $SYSROOT"
    APTDIR=$CACHE/apt
    rm -rf "$APTDIR" && mkdir -p "$APTDIR"/{state/lists/partial,cache/archives/partial,sources.list.d}
    : >"$APTDIR/state/status"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then   # the host's mirror (and its proxy settings in apt.conf.d)
        host=$(. /etc/os-release && echo "${VERSION_CODENAME:-$SUITE}")
        sed "s/\b$host\b/$SUITE/g" /etc/apt/sources.list.d/debian.sources >"$APTDIR/sources.list.d/debian.sources"
    fi
    [ -f "$APTDIR/sources.list.d/debian.sources" ] || printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$SUITE" >"$APTDIR/sources.list.d/debian.sources"
    cat >"$APTDIR/apt.conf" <<EOF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$APTDIR/state";
Dir::State::status "$APTDIR/state/status";
Dir::Cache "$APTDIR/cache";
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$APTDIR/sources.list.d";
Debug::NoLocking "true";
EOF
    export APT_CONFIG=$APTDIR/apt.conf
    { apt-get update -qq && apt-get install -d -y -qq --no-install-recommends $DEBS; } >"$APTDIR/apt.log" 2>&1 \
        || skip "the arm64 sysroot: apt-get could not download $DEBS for arm64 (no network to Debian's mirror?); see $APTDIR/apt.log"
    unset APT_CONFIG
    rm -rf "$SYSROOT.tmp" && mkdir -p "$SYSROOT.tmp"
    for deb in "$APTDIR"/cache/archives/*.deb; do dpkg -x "$deb" "$SYSROOT.tmp"; done
    rm -rf "$APTDIR/cache/archives"/*.deb
    # Debian ships no .pyc and these machines set PYTHONDONTWRITEBYTECODE: compile the stdlib once
    # with the host's Python of the same minor version (same bytecode), or every import compiles.
    HOSTPY=$(command -v "python$PYVER" || true)
    if [ -n "$HOSTPY" ]; then "$HOSTPY" -m compileall -q -j 0 "$SYSROOT.tmp/usr/lib/python$PYVER" >/dev/null 2>&1 || true; fi
    echo "$SUITE $DEBS" >"$SYSROOT.tmp/.packages"
    rm -rf "$SYSROOT" && mv "$SYSROOT.tmp" "$SYSROOT"
fi

# ---------------------------------------------------------------- 3. the device install
# This project as a wheel, installed with its [pi] and [onnxruntime] extras: what a Pi gets from
# pip install 'edge-rcnn[pi,onnxruntime]'. The same releases as the host venv, so only the CPU
# differs between the two sides.
pins=$("$PY" - <<'EOF'
from importlib.metadata import PackageNotFoundError, version
out = []
for dist in ("numpy", "ai-edge-litert", "onnxruntime", "opencv-python-headless", "pytest"):
    try:
        out.append(f"{dist}=={version(dist)}")
    except PackageNotFoundError:
        out.append(dist)
print(" ".join(out))
EOF
)
platforms() {  # pip takes a wheel only for a platform tag named here: glibc 2.17 up to 2.$1
    local v out="--platform manylinux2014_aarch64"
    for v in $(seq 17 "$1"); do out="$out --platform manylinux_2_${v}_aarch64"; done
    echo "$out"
}
DIST=$CACHE/dist
rm -rf "$DIST" && mkdir -p "$DIST/src"
cp -r pyproject.toml README.md edge_rcnn converters runtimes "$DIST/src/"
find "$DIST/src" -name __pycache__ -prune -exec rm -rf {} +
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$DIST" "$DIST/src" >"$DIST/wheel.log" 2>&1 \
    || { echo "test-pi: building this project's wheel failed; see $DIST/wheel.log" >&2; exit 1; }
WHEEL=$(ls "$DIST"/edge_rcnn-*.whl)
SITE=$CACHE/site-cp${PYVER/./}
stamp="$pins $(sha256sum pyproject.toml | cut -c1-16)"
if [ "$(cat "$SITE/.pins" 2>/dev/null)" != "$stamp" ]; then
    echo "test-pi: installing edge-rcnn[pi,onnxruntime] for aarch64 into $SITE: $pins"
    rm -rf "$SITE.tmp"
    for req in $pins; do  # one at a time first, so a missing wheel names its package
        "$PY" -m pip download -q --no-deps --only-binary=:all: $(platforms $GLIBC) --python-version "$PYVER" \
            -d "$CACHE/wheels" "$req" >"$CACHE/pip.log" 2>&1 \
            || skip "$req: no wheel for $PLATFORM, Python $PYVER (or no network to PyPI); see $CACHE/pip.log"
    done
    "$PY" -m pip install -q --target "$SITE.tmp" --only-binary=:all: $(platforms $GLIBC) --python-version "$PYVER" \
        --find-links "$CACHE/wheels" "$WHEEL[pi,onnxruntime]" $pins >"$CACHE/pip.log" 2>&1 \
        || skip "edge-rcnn[pi,onnxruntime] does not install for $PLATFORM, Python $PYVER; see $CACHE/pip.log"
    echo "$stamp" >"$SITE.tmp/.pins"
    rm -rf "$SITE" && mv "$SITE.tmp" "$SITE"
fi
# Raspberry Pi OS trixie has Python 3.13 and glibc 2.41: edge-rcnn[pi] must resolve there too.
"$PY" -m pip install -q --dry-run --ignore-installed --target "$DIST/cp313" --only-binary=:all: $(platforms 41) \
    --python-version 3.13 "$WHEEL[pi]" >"$DIST/cp313.log" 2>&1 \
    || skip "edge-rcnn[pi] does not resolve for manylinux_2_41_aarch64, Python 3.13 (or no network to PyPI); see $DIST/cp313.log"
echo "test-pi: edge-rcnn[pi] resolves for aarch64 Python 3.13 (trixie) too"

# ---------------------------------------------------------------- 4. the assets, on the host
ASSETS=$CACHE/assets
echo "test-pi: exporting the test models and the x86 reference on the host"
"$PY" tests/device/make_assets.py "$ASSETS"

# ---------------------------------------------------------------- 5. the device tests, per CPU
# ONNX Runtime reads /proc/cpuinfo at import and crashes on the host's x86 one. qemu serves files
# from the sysroot first (-L), so each run gets the /proc/cpuinfo and device-tree model of the Pi
# it emulates: a Pi 4's four Cortex-A72 (CPU part 0xd08), a Pi 5's four Cortex-A76 (0xd0b, dotprod).
pi_files() {  # CPU -> SYSROOT/proc/{cpuinfo,device-tree/model}
    local part features model revision board
    case $1 in
        cortex-a72) part=0xd08 features="fp asimd evtstrm crc32 cpuid" revision=3
                    model="Raspberry Pi 4 Model B Rev 1.4" board=c03114 ;;
        cortex-a76) part=0xd0b features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" revision=1
                    model="Raspberry Pi 5 Model B Rev 1.0" board=c04170 ;;
        *) echo "test-pi: no Pi has a $1 (PI_CPUS takes cortex-a72, cortex-a76)" >&2; exit 2 ;;
    esac
    mkdir -p "$SYSROOT/proc/device-tree"
    for i in 0 1 2 3; do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: %s\nCPU revision\t: %s\n\n' \
            $i "$features" $part $revision
    done >"$SYSROOT/proc/cpuinfo"
    printf 'Revision\t: %s\nSerial\t\t: 10000000c0ffee00\nModel\t\t: %s\n' $board "$model" >>"$SYSROOT/proc/cpuinfo"
    printf '%s\0' "$model" >"$SYSROOT/proc/device-tree/model"
    echo "$model"
}

status=0
for cpu in $CPUS; do
    model=$(pi_files "$cpu") || exit 2
    echo "test-pi: pytest tests/device on aarch64, qemu -cpu $cpu as a $model (emulated: timings mean nothing)"
    env -u PYTHONHOME QEMU_LD_PREFIX="$SYSROOT" QEMU_CPU="$cpu" PYTHONPATH="$SITE" PYTHONNOUSERSITE=1 \
        EDGE_RCNN_DEVICE_ASSETS="$ASSETS" EDGE_RCNN_EXPECT_BOARD="$model" EDGE_RCNN_QUIET=1 \
        "$QEMU" "$SYSROOT/usr/bin/python$PYVER" -m pytest tests/device -q -p no:cacheprovider || status=$?
done
exit $status
