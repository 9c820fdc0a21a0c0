#!/usr/bin/env bash
# The SDK outside Bazel: build and install it with CMake, then build a consumer against the
# installation twice, with find_package and with pkg-config, and run both.
set -euo pipefail
RUNFILES=${TEST_SRCDIR:-$PWD/..}/audit_trail
SDK_DIR=$(dirname "$(readlink -f "$RUNFILES/clients/cpp/CMakeLists.txt")")
CONSUMER_DIR=$(dirname "$(readlink -f "$RUNFILES/tests/sdk/consumer/CMakeLists.txt")")
WORK=$(mktemp -d /tmp/audit-sdk-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== build and install the SDK"
cmake -S "$SDK_DIR" -B "$WORK/build" -DCMAKE_INSTALL_PREFIX="$WORK/prefix" >"$WORK/configure.log" \
  || { cat "$WORK/configure.log"; fail "configure"; }
cmake --build "$WORK/build" -j 2 >"$WORK/build.log" 2>&1 || { tail -50 "$WORK/build.log"; fail "build"; }
cmake --install "$WORK/build" >/dev/null
for f in include/audit/audit_client.h include/audit/publisher.h include/audit/v1/event.pb.h \
         include/audit/mocks/mock_audit_connection.h lib/libauditclient.a \
         lib/cmake/auditclient/auditclientConfig.cmake lib/pkgconfig/audit-client.pc; do
  [ -e "$WORK/prefix/$f" ] || fail "not installed: $f"
done

echo "== consumer with find_package(auditclient)"
cmake -S "$CONSUMER_DIR" -B "$WORK/consumer" -DCMAKE_PREFIX_PATH="$WORK/prefix" >/dev/null \
  || fail "consumer configure"
cmake --build "$WORK/consumer" >"$WORK/consumer.log" 2>&1 || { cat "$WORK/consumer.log"; fail "consumer build"; }
out=$("$WORK/consumer/consumer") || fail "consumer run: $out"
echo "$out" | tail -1 | grep -qx ok || fail "consumer output: $out"

echo "== consumer with pkg-config"
export PKG_CONFIG_PATH="$WORK/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
g++ -o "$WORK/consumer-pc" "$CONSUMER_DIR/main.cc" $(pkg-config --cflags --libs audit-client) \
  || fail "pkg-config build"
out=$("$WORK/consumer-pc") || fail "pkg-config consumer run: $out"
echo "$out" | tail -1 | grep -qx ok || fail "pkg-config consumer output: $out"
echo PASS
