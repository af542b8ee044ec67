#!/usr/bin/env bash
# Runs the whole plugin suite (tests/plugin) on the QGIS releases analysts use, each from Debian's own packages:
#   bookworm = QGIS 3.22 (the host itself when it is Debian 12, else a root folder), trixie = 3.40 LTR, forky = 3.44 LTR
# Usage: bash scripts/qgis_matrix.sh [SUITE ...]        (default: bookworm trixie forky; run as root)
#        bash scripts/qgis_matrix.sh --lock SUITE ...   (writes requirements/qgis-lock-pyXY.txt for the suite's Python)
#        bash scripts/qgis_matrix.sh --desktop SUITE PNG  (the real QGIS desktop under Xvfb runs "Describe changes"
#                                                          once: scripts/qgis_desktop_check.py; screenshot to PNG)
# Each non-host suite gets a root folder built once with debootstrap and cached outside the checkout
# ($CCEXPERT_QGIS_CACHE, default /var/cache/ccexpert-qgis/<suite>): QGIS, qgis_process and a venv of the suite's
# /usr/bin/python3 (system site packages, so `qgis` imports) holding the plugin's test tools from the lock for that
# Python (requirements/qgis-lock.txt is Python 3.11's, requirements/qgis-lock-py313.txt 3.13's, ...). A changed
# package list rebuilds the root; a changed lock rebuilds the venv. The checkout (/work) and the backend's Python
# (.venv and the interpreter it was made from) are bind-mounted at their own paths, so the tests start the host's
# `ccexpert serve` unchanged. Every run happens in a private mount namespace (unshare) and a trap unmounts on every
# exit path, so no mount outlives the run, even after a failure or Ctrl-C.
# Prints one line per suite: `QGIS <version> (Python <v>, GDAL <v>, Qt <v>): N passed, M failed, K skipped`, and
# exits non-zero when any suite fails, crashes or cannot be built.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${CCEXPERT_QGIS_CACHE:-/var/cache/ccexpert-qgis}"
MIRROR="${CCEXPERT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PYTEST_TIMEOUT_S="${CCEXPERT_QGIS_PYTEST_TIMEOUT_S:-2400}"
ALL_SUITES=(bookworm trixie forky)
# What each root holds. Changing this list rebuilds every root (it is part of the cache key).
PACKAGES=(qgis python3-qgis qgis-providers qgis-common python3-venv python3-pip ca-certificates)
PIP_TOOLS_VERSION=7.7.0
APT=(apt-get -q -o Acquire::Check-Valid-Until=false -o APT::Install-Recommends=false)

die() { echo "qgis_matrix: $*" >&2; exit 2; }
log() { echo "qgis_matrix: $*" >&2; }

host_suite() { (. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}"); }

# sha256 prefix of the strings given: the cache keys
key_of() { printf '%s\n' "$@" | sha256sum | cut -c1-16; }

lock_for_python() {  # "3.13" -> the lock file (relative to the repo) for that Python
  if [ "$1" = "3.11" ]; then echo requirements/qgis-lock.txt; else echo "requirements/qgis-lock-py${1/./}.txt"; fi
}

# ---------------------------------------------------------------- mounts (only ever called inside `unshare -m`)
MOUNTED=()
mount_bind() {  # SRC DST [ro]   (DST: a folder, or an existing file when SRC is a file)
  [ -f "$2" ] || mkdir -p "$2" || return 1
  mount --bind "$1" "$2" || return 1
  MOUNTED+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2" || return 1; fi
}
unmount_all() {
  local i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do umount "${MOUNTED[i]}" 2>/dev/null || umount -l "${MOUNTED[i]}"; done
  MOUNTED=()
}
mount_system() {  # ROOT: what apt and QGIS need
  local root="$1"
  mount_bind /proc "$root/proc" && mount_bind /sys "$root/sys" && mount_bind /dev "$root/dev" &&
    mount_bind /dev/pts "$root/dev/pts" && { ! mountpoint -q /dev/shm || mount_bind /dev/shm "$root/dev/shm"; }
}
mount_project() {  # ROOT SUITE: the checkout and the backend's Python at their own paths, a fresh QGIS profile
  local root="$1" suite="$2" backend_python work settings
  work="$(dirname "$REPO")"
  mount_bind "$work" "$root$work" || return 1
  # .venv may be a link out of the checkout (a shared venv); its interpreter lives where the venv was made
  backend_python="$(readlink -f "$REPO/.venv/bin/python" 2>/dev/null)"
  for dir in "$(readlink -f "$REPO/.venv")" "$(dirname "$(dirname "$backend_python")")"; do
    case "$dir" in "" | /usr | /usr/* | "$work" | "$work"/*) ;; *) mount_bind "$dir" "$root$dir" ro || return 1 ;; esac
  done
  # a venv made from the system Python (Debian 12: /usr/bin/python3.11): that interpreter and its standard library,
  # which the suite's root does not have (trixie and forky ship 3.13 and 3.14)
  case "$backend_python" in
    /usr/bin/python3.*)
      local name="${backend_python##*/}"
      if [ ! -s "$root/usr/bin/$name" ]; then  # -s: not the empty mount point left by an earlier run
        touch "$root/usr/bin/$name" && mount_bind "$backend_python" "$root/usr/bin/$name" ro &&
          mount_bind "/usr/lib/$name" "$root/usr/lib/$name" ro || return 1
      fi
      ;;
  esac
  # each QGIS release gets its own settings and auth database (pytest-qgis keeps them in tests/plugin/.qgis-settings)
  settings="$CACHE/$suite.settings"
  rm -rf "$settings" && mkdir -p "$settings" "$REPO/tests/plugin/.qgis-settings" || return 1
  mount_bind "$settings" "$root$REPO/tests/plugin/.qgis-settings"
}

in_root() {  # ROOT CMD...: a clean environment; /usr/bin/python3 by full path everywhere
  local root="$1"; shift
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# ---------------------------------------------------------------- build (inside `unshare -m`)
build_root() {  # SUITE: the cached root with QGIS; returns when $CACHE/SUITE holds the current package list
  local suite="$1" root="$CACHE/$1" build="$CACHE/$1.build" key script=()
  key="$(key_of "$suite" "$MIRROR" "${PACKAGES[@]}")"
  [ -f "$root/.ccexpert-apt-$key" ] && return 0
  log "$suite: building the root folder in $build (package list key $key)"
  local t0=$SECONDS
  if [ ! -f "$build/.ccexpert-debootstrap-done" ]; then
    rm -rf "$build"
    # bookworm's debootstrap knows no forky: sid's script builds any testing/unstable suite
    [ -e "/usr/share/debootstrap/scripts/$suite" ] || script=(/usr/share/debootstrap/scripts/sid)
    nice -n 10 debootstrap --variant=minbase "$suite" "$build" "$MIRROR" "${script[@]}" > "$CACHE/$suite.debootstrap.log" 2>&1 ||
      { tail -n 20 "$CACHE/$suite.debootstrap.log" >&2; log "$suite: debootstrap failed"; return 1; }
    touch "$build/.ccexpert-debootstrap-done"
  fi
  mount_system "$build" || return 1
  # the host's TLS setup (its extra CAs) for pip inside the root
  if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$build/usr/local/share/ca-certificates" && cp -r /usr/local/share/ca-certificates/. "$build/usr/local/share/ca-certificates/"
  fi
  echo "deb $MIRROR $suite main" > "$build/etc/apt/sources.list"
  # forky's Release in the archive may be past its Valid-Until date: APT carries the override
  if ! { in_root "$build" "${APT[@]}" update && in_root "$build" nice -n 10 "${APT[@]}" install -y "${PACKAGES[@]}" &&
    in_root "$build" update-ca-certificates && in_root "$build" "${APT[@]}" clean; } > "$CACHE/$suite.apt.log" 2>&1; then
    tail -n 30 "$CACHE/$suite.apt.log" >&2; log "$suite: apt-get failed (log: $CACHE/$suite.apt.log)"; unmount_all; return 1
  fi
  unmount_all
  rm -f "$build"/.ccexpert-apt-* && touch "$build/.ccexpert-apt-$key"
  rm -rf "$root" && mv "$build" "$root" || return 1
  log "$suite: root folder built in $((SECONDS - t0)) s"
}

root_python() { in_root "$1" /usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

build_venv() {  # SUITE: /opt/ccexpert-tests in the root, from the lock for the root's Python (rebuilt when it changes)
  local suite="$1" root="$CACHE/$1" pyver lock key
  pyver="$(root_python "$root")" || return 1
  lock="$(lock_for_python "$pyver")"
  [ -f "$REPO/$lock" ] || { log "$suite: no lock for Python $pyver: run \`bash scripts/qgis_matrix.sh --lock $suite\` and commit $lock"; return 1; }
  key="$(sha256sum "$REPO/$lock" | cut -c1-16)"
  [ -f "$root/opt/ccexpert-tests/.ccexpert-lock-$key" ] && return 0
  log "$suite: installing the plugin's test tools from $lock"
  local t0=$SECONDS
  rm -rf "$root/opt/ccexpert-tests"
  cp "$REPO/$lock" "$root/tmp/ccexpert-lock.txt"
  if ! { in_root "$root" /usr/bin/python3 -m venv --system-site-packages /opt/ccexpert-tests &&
    in_root "$root" /opt/ccexpert-tests/bin/python -m pip install --no-cache-dir --require-hashes -r /tmp/ccexpert-lock.txt; } \
    > "$CACHE/$suite.pip.log" 2>&1; then
    tail -n 30 "$CACHE/$suite.pip.log" >&2; log "$suite: pip install failed (log: $CACHE/$suite.pip.log)"; return 1
  fi
  touch "$root/opt/ccexpert-tests/.ccexpert-lock-$key"
  log "$suite: test tools installed in $((SECONDS - t0)) s"
}

write_lock() {  # SUITE: pip-compile inside the root, for its Python, with hashes, like scripts/lock.sh
  local suite="$1" root="$CACHE/$1" pyver lock
  pyver="$(root_python "$root")" || return 1
  lock="$(lock_for_python "$pyver")"
  [ "$lock" = requirements/qgis-lock.txt ] && { log "$suite: Python 3.11's lock is written by scripts/lock.sh"; return 1; }
  rm -rf "$root/tmp/ccexpert-lock" && mkdir -p "$root/tmp/ccexpert-lock" || return 1
  cp "$REPO/requirements/qgis-tools.in" "$root/tmp/ccexpert-lock/"
  mkdir -p "$root/tmp/ccexpert-lock/requirements" && cp "$REPO/requirements/qgis-tools.in" "$root/tmp/ccexpert-lock/requirements/"
  in_root "$root" /usr/bin/python3 -m venv /tmp/ccexpert-lock/venv &&
    in_root "$root" /tmp/ccexpert-lock/venv/bin/python -m pip install -q "pip-tools==$PIP_TOOLS_VERSION" &&
    in_root "$root" /bin/sh -c "cd /tmp/ccexpert-lock && venv/bin/pip-compile --quiet --upgrade --generate-hashes \
      --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links -o out.txt requirements/qgis-tools.in" ||
    { log "$suite: pip-compile failed"; return 1; }
  # the header names the command as it is rerun from the checkout
  sed "s#-o out.txt#-o $lock#; s#--output-file=out.txt#--output-file=$lock#" "$root/tmp/ccexpert-lock/out.txt" > "$REPO/$lock"
  printf '# inputs-sha256: %s\n' "$(python3 "$REPO/scripts/check_lock.py" --print-digest "$lock")" >> "$REPO/$lock"
  log "$suite: wrote $lock (Python $pyver)"
}

# ---------------------------------------------------------------- desktop check (inside `unshare -m`)
DESKTOP_PACKAGES=(xvfb xauth)
run_desktop() {  # SUITE PNG: the plugin in the real desktop, as an analyst runs it once; PNG and PNG.json written
  local suite="$1" png="$2" root="$CACHE/$1" work=/opt/ccexpert-desktop port key rc
  build_root "$suite" && mount_system "$root" && mount_project "$root" "$suite" || return 1
  if [ ! -f "$root/.ccexpert-desktop-tools" ]; then
    { in_root "$root" "${APT[@]}" install -y "${DESKTOP_PACKAGES[@]}" && touch "$root/.ccexpert-desktop-tools"; } \
      > "$CACHE/$suite.desktop-apt.log" 2>&1 || { log "$suite: cannot install ${DESKTOP_PACKAGES[*]}"; return 1; }
  fi
  # a fresh profile (QGIS keeps profiles in <profiles-path>/profiles/<name>) with the checkout's plugin enabled
  local profile="$root$work/profiles/profiles/default"
  # outside /tmp: QGIS asks on exit about layers under the system temp folder ("temporary layers")
  rm -rf "$root$work" && mkdir -p "$profile/python/plugins" "$profile/QGIS" || return 1
  ln -s "$REPO/qgis_plugin/ccexpert_changes" "$profile/python/plugins/ccexpert_changes"
  printf '[PythonPlugins]\nccexpert_changes=true\n\n[qgis]\nshowTips=false\ncheckVersion=false\n' > "$profile/QGIS/QGIS3.ini"
  # a generated scene with known changes (the backend's Python writes it), the demo model behind a loopback server
  in_root "$root" "PYTHONPATH=$REPO/backend:$REPO/training:$REPO/qgis_plugin" "$REPO/.venv/bin/python" -c \
    'import sys; from ccexpert_training.synth import make_scene_pair; print(*make_scene_pair(sys.argv[1], size=1152, seed=3), sep="\n")' \
    "$work/scene" > "$root$work/scene.txt" || { log "$suite: cannot generate the scene"; return 1; }
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  key="desktop-check-$RANDOM$RANDOM"
  echo "$key desktop-check" > "$root$work/keys.txt"
  # chroot itself in the background (not a shell function: its subshell would hide the server from `kill`)
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/bin:/bin OMP_NUM_THREADS=1 \
    "PYTHONPATH=$REPO/backend:$REPO/training:$REPO/qgis_plugin" "$REPO/.venv/bin/ccexpert" serve \
    --model "$REPO/backend/ccexpert/demo_model" --host 127.0.0.1 --port "$port" --api-keys-file "$work/keys.txt" \
    > "$root$work/serve.log" 2>&1 &
  SERVE_PID=$!
  trap 'kill "$SERVE_PID" 2>/dev/null; wait "$SERVE_PID" 2>/dev/null; unmount_all' EXIT
  local i
  for i in $(seq 1 240); do
    curl -sf "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
    kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 20 "$root$work/serve.log" >&2; log "ccexpert serve exited"; return 1; }
    sleep 0.5
  done
  local before after config
  { read -r before; read -r after; } < <(head -n 2 "$root$work/scene.txt")
  config="$(python3 -c 'import json, sys; print(json.dumps(dict(zip(["url", "key", "before", "after", "output", "screenshot", "report", "master"], sys.argv[1:]))))' \
    "http://127.0.0.1:$port" "$key" "$before" "$after" "$work/changes.gpkg" "$work/shot.png" "$work/report.json" "desktop-check-master")"
  in_root "$root" "CCEXPERT_DESKTOP_CHECK=$config" "HOME=$work" timeout --foreground 900 xvfb-run -a -s "-screen 0 1600x1000x24" \
    qgis --profiles-path "$work/profiles" --profile default --nologo --noversioncheck \
    --code "$REPO/scripts/qgis_desktop_check.py" > "$root$work/qgis.log" 2>&1
  rc=$?
  cat "$root$work/report.json" 2>/dev/null
  [ -f "$root$work/shot.png" ] && cp "$root$work/shot.png" "$png" && cp "$root$work/report.json" "$png.json"
  [ "$rc" -eq 0 ] || { tail -n 30 "$root$work/qgis.log" >&2; log "$suite: the desktop check failed (exit $rc; log $root$work/qgis.log)"; }
  return $rc
}

# ---------------------------------------------------------------- run
versions_line() {  # PYTHON: "QGIS x (Python y, GDAL z, Qt q)"
  "$@" -c 'import platform; from qgis.core import Qgis; from osgeo import gdal; from qgis.PyQt.QtCore import QT_VERSION_STR
print(f"QGIS {Qgis.QGIS_VERSION.split(chr(45))[0]} (Python {platform.python_version()}, GDAL {gdal.__version__}, Qt {QT_VERSION_STR})")' 2>/dev/null
}

counts_of() {  # JUNIT_XML: "N passed, M failed, K skipped"
  python3 - "$1" << 'EOF'
import sys
import xml.etree.ElementTree as ET

suite = ET.parse(sys.argv[1]).getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
tests, failed = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
skipped = int(suite.get("skipped"))
print(f"{tests - failed - skipped} passed, {failed} failed, {skipped} skipped")
EOF
}

# CCEXPERT_QGIS_TESTS narrows the run (e.g. "tests/plugin/test_backend_client.py"); CI runs the whole suite
read -ra PLUGIN_TESTS <<< "${CCEXPERT_QGIS_TESTS:-tests/plugin}"
# `timeout --foreground` everywhere: a plain `timeout` puts the tests in a process group of their own, where Ctrl-C
# never reaches them
PYTEST_ARGS=(-m pytest -c tests/plugin/pytest.ini "${PLUGIN_TESTS[@]}" -q -rfEs -p no:cacheprovider)
TEST_ENV=(QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1 PYTHONFAULTHANDLER=1
  "PYTHONPATH=$REPO/backend:$REPO/training:$REPO/qgis_plugin")

report() {  # SUITE VERSIONS RC JUNIT -> prints the suite's line; returns non-zero when it failed or crashed
  local suite="$1" versions="$2" rc="$3" junit="$4" counts line
  counts="$(counts_of "$junit" 2>/dev/null)" || counts="no test report"
  line="${versions:-QGIS ? ($suite)}: $counts"
  case "$rc" in
    0) ;;
    1) ;;
    124) line+=" -- timed out after ${PYTEST_TIMEOUT_S} s" ;;
    *) line+=" -- crashed (exit $rc$([ "$rc" -gt 128 ] && echo ", signal $((rc - 128))"))" ;;
  esac
  echo "$line" >> "$RESULTS"
  [ "$rc" -eq 0 ]
}

run_on_host() {  # bookworm on a Debian 12 host: .venv-qgis, as scripts/test.sh has always run it
  local suite="$1" junit rc versions
  junit="$(mktemp --suffix=.xml)"
  versions="$(versions_line /usr/bin/python3)"
  (cd "$REPO" && env "${TEST_ENV[@]}" timeout --foreground "$PYTEST_TIMEOUT_S" .venv-qgis/bin/python "${PYTEST_ARGS[@]}" --junitxml="$junit")
  rc=$?
  report "$suite" "$versions (host)" "$rc" "$junit"; rc=$?
  rm -f "$junit"
  return $rc
}

run_in_root() {  # SUITE (inside `unshare -m`)
  local suite="$1" root="$CACHE/$1" rc versions
  build_root "$suite" && mount_system "$root" && build_venv "$suite" && mount_project "$root" "$suite" ||
    { echo "QGIS ? ($suite): not run -- the root folder could not be built" >> "$RESULTS"; return 1; }
  versions="$(versions_line in_root "$root" /usr/bin/python3)"
  # the backend must run in the root, or every test that needs it would be skipped, not failed
  if ! in_root "$root" "PYTHONPATH=$REPO/backend:$REPO/training:$REPO/qgis_plugin" "$REPO/.venv/bin/python" \
    -c 'import ccexpert.service' > "$CACHE/$suite.backend-check.log" 2>&1; then
    tail -n 5 "$CACHE/$suite.backend-check.log" >&2
    echo "${versions:-QGIS ? ($suite)}: not run -- the backend's .venv does not run in the root folder" >> "$RESULTS"
    return 1
  fi
  local t0=$SECONDS
  rm -f "$root/tmp/ccexpert-junit.xml"
  in_root "$root" "${TEST_ENV[@]}" /bin/sh -c "cd '$REPO' && exec timeout --foreground $PYTEST_TIMEOUT_S /opt/ccexpert-tests/bin/python \
    ${PYTEST_ARGS[*]} --junitxml=/tmp/ccexpert-junit.xml"
  rc=$?
  log "$suite: plugin suite ran in $((SECONDS - t0)) s"
  report "$suite" "$versions" "$rc" "$root/tmp/ccexpert-junit.xml"
}

inside() {  # MODE SUITE: the part that runs in the private mount namespace
  trap unmount_all EXIT
  trap 'exit 130' INT TERM
  case "$1" in
    run) run_in_root "$2" ;;
    lock) build_root "$2" && mount_system "$CACHE/$2" && write_lock "$2" ;;
    desktop) run_desktop "$2" "$3" ;;
  esac
}

main() {
  [ "${1:-}" = --inside ] && { shift; inside "$@"; exit $?; }
  if [ "${1:-}" = --desktop ]; then
    [ $# -eq 3 ] || die "usage: $0 --desktop SUITE PNG"
    [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and bind mounts)"
    local png
    png="$(realpath -m "$3")"
    unshare --mount --propagation private -- bash "$0" --inside desktop "$2" "$png"
    return $?
  fi
  local mode=run
  [ "${1:-}" = --lock ] && { mode=lock; shift; }
  local suites=("$@")
  [ ${#suites[@]} -gt 0 ] || suites=("${ALL_SUITES[@]}")
  for s in "${suites[@]}"; do
    case " ${ALL_SUITES[*]} " in *" $s "*) ;; *) die "unknown suite '$s' (known: ${ALL_SUITES[*]})" ;; esac
  done
  [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and bind mounts)"
  if ! command -v debootstrap > /dev/null; then
    log "installing debootstrap"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap; } > /dev/null || die "cannot install debootstrap"
  fi
  mkdir -p "$CACHE" || die "cannot create $CACHE"
  RESULTS="$(mktemp)"
  export RESULTS
  trap 'rm -f "$RESULTS"' EXIT
  trap 'echo "qgis_matrix: interrupted" >&2; exit 130' INT TERM
  local status=0 host
  host="$(host_suite)"
  for s in "${suites[@]}"; do
    if [ "$mode" = run ] && [ "$s" = "$host" ] && [ -x /usr/bin/qgis_process ] && [ -x "$REPO/.venv-qgis/bin/python" ]; then
      log "$s: the host's QGIS (.venv-qgis)"
      run_on_host "$s" || status=1
    else
      log "$s: $mode in the root folder $CACHE/$s"
      # a private mount namespace: whatever happens inside, its mounts end with it
      unshare --mount --propagation private -- bash "$0" --inside "$mode" "$s" || status=1
    fi
  done
  if [ "$mode" = run ]; then
    echo "== QGIS matrix"
    cat "$RESULTS"
  fi
  return $status
}

# run unless sourced (tests source the file for its functions); exit at once so an edit of the file mid-run is harmless
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; exit $?; fi
