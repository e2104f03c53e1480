#!/usr/bin/env bash
# Builds with sanitizers and runs tests under them; any report fails the run.
# Usage: scripts/sanitize.sh address|thread
#   address  AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer)
#            in build-asan/: the whole test suite.
#   thread   ThreadSanitizer in build-tsan/: the tests of code with threads
#            (CTest names "actors:", "chaos:", "examples:", "http:",
#            "transport:", "redis:", "gateway:"),
#            against a libcaf_core built with -fsanitize=thread (see below).
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

mode=${1:-}
case "$mode" in
  address)
    dir=build-asan
    sanitize=address,undefined
    runtime=(libasan8 liblsan0 libubsan1)
    ;;
  thread)
    dir=build-tsan
    sanitize=thread
    runtime=(libtsan2)
    ;;
  *)
    echo "usage: $0 address|thread" >&2
    exit 2
    ;;
esac

jobs=$(nproc)
((jobs > 2)) && jobs=2 # a CAF translation unit takes ~1 GB to compile with sanitizers

# ThreadSanitizer only sees synchronisation done by instrumented code, and
# Debian's libcaf_core is not instrumented: each message handed from one
# actor to another through CAF's lock-free mailboxes and scheduler queues
# would be reported as a race (4,361 reports on the actor tests and the
# examples; suppressing them would mean suppressing every actor). So the
# thread build links a libcaf_core built with -fsanitize=thread from the
# upstream tarball of the same Debian source package (fetched by apt, its
# SHA-256 checked against the signed Sources index). Its headers and build
# configuration must equal /usr/include/caf, which is checked. Built once
# into build-tsan/caf (about 1.5 min on 2 cores); prints the library's path.
instrumented_caf() {
  local out=$root/$dir/caf
  if [[ -e $out/lib/libcaf_core.so ]]; then
    echo "$out/lib/libcaf_core.so"
    return
  fi
  rm -rf "$out"
  mkdir -p "$out"/apt/{lists/partial,cache/archives/partial,sources.list.d} "$out/lib"

  # A private apt state: a deb-src entry for this Debian release only, the
  # system's apt configuration untouched.
  local package version codename
  package=$(dpkg-query -W -f='${source:Package}' libcaf-dev)
  version=$(dpkg-query -W -f='${source:Version}' libcaf-dev)
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  : >"$out/apt/sources.list"
  cat >"$out/apt/sources.list.d/debian-src.sources" <<EOF
Types: deb-src
URIs: ${SWITCHYARD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  local apt_opts=(-o "Dir::Etc::SourceList=$out/apt/sources.list"
                  -o "Dir::Etc::SourceParts=$out/apt/sources.list.d"
                  -o "Dir::State::Lists=$out/apt/lists"
                  -o "Dir::Cache=$out/apt/cache")
  apt-get -qq "${apt_opts[@]}" update >&2
  local url file size hash
  read -r url file size hash < <(cd "$out" && apt-get -qq "${apt_opts[@]}" source \
    --print-uris "$package=$version" | grep '\.orig\.tar\.')
  /usr/lib/apt/apt-helper -qq download-file "${url//\'/}" "$out/$file" "$hash" >&2
  tar -xf "$out/$file" -C "$out"
  local src
  src=$out/$(tar -tf "$out/$file" | head -1 | cut -d/ -f1)

  # Debian's build configuration: log level QUIET, no runtime checks, with
  # exceptions and memory management (compare caf/detail/build_config.hpp).
  cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS=-fsanitize=thread" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
    -DCAF_LOG_LEVEL=QUIET -DCAF_NO_IO=yes -DCAF_NO_OPENSSL=yes -DCAF_NO_OPENCL=yes \
    -DCAF_NO_PYTHON=yes -DCAF_NO_TOOLS=yes -DCAF_NO_EXAMPLES=yes \
    -DCAF_NO_UNIT_TESTS=yes -DCAF_NO_SUMMARY=yes >&2
  if ! diff -q "$out/build/libcaf_core/caf/detail/build_config.hpp" \
         /usr/include/caf/detail/build_config.hpp >&2 \
     || diff -rq "$src/libcaf_core/caf" /usr/include/caf | grep -v '^Only in /usr/include/caf' >&2; then
    echo "the CAF source differs from the installed libcaf-dev headers" >&2
    exit 1
  fi
  cmake --build "$out/build" -j "$jobs" --target libcaf_core_shared >&2
  cp -a "$out/build/lib"/libcaf_core.so* "$out/lib/"
  echo "$out/lib/libcaf_core.so"
}

scripts/install-deps.sh redis-server openssl "${runtime[@]}"

caf_option=()
if [[ $mode == thread ]]; then
  caf_library=$(instrumented_caf)
  caf_option=("-DCAF_CORE_LIBRARY=$caf_library")
fi

# -O1 -g1: usable stack traces (functions and line tables: all a sanitizer
# report prints) at a bearable speed; full -g's variable and type info
# made each test file take ~65 % longer to compile. No NDEBUG, so library
# assertions (nlohmann::json's) stay on. The benchmark is not needed here.
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1" \
  -DSWITCHYARD_SANITIZE="$sanitize" -DSWITCHYARD_BUILD_BENCH=OFF "${caf_option[@]}" >/dev/null

# Under sanitizers the chaos test runs fewer requests (it reads this).
export SWITCHYARD_CHAOS_REQUESTS=${SWITCHYARD_CHAOS_REQUESTS:-20000}

if [[ $mode == address ]]; then
  cmake --build "$dir" -j "$jobs"
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
  export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs"
else
  targets=(switchyard-actor-tests example-actor-system-app example-threaded-caller)
  # (Captured first: grep -q exiting early would fail the pipe under pipefail.)
  available=$(cmake --build "$dir" --target help)
  # Every binary whose code runs threads of its own besides CAF's: the
  # HTTP client's (also hosted on Asio threads) and the shared state's
  # I/O threads, the gateway's.
  for t in chaos http http-hosted transport redis gateway; do
    if grep -qw "switchyard-$t-tests" <<<"$available"; then
      targets+=("switchyard-$t-tests")
    fi
  done
  cmake --build "$dir" -j "$jobs" --target "${targets[@]}"
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:exitcode=66:suppressions=$root/tests/tsan.supp"
  # Not the single-threaded deep-nesting parser tests: they recurse deeper
  # than the 65,535 frames a TSan stack trace can hold (TSan CHECK-fails in
  # sanitizer_stackdepot.cpp); they run under ASan and in the Release suite.
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j "$jobs" \
    -R '^(actors|chaos|examples|http|http hosted|transport|redis|gateway):' -E 'deeply nested'
fi
