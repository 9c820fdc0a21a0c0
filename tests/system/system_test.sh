#!/usr/bin/env bash
# System test: the real binaries as processes (dev broker, migrations, ingestor) against a
# private PostgreSQL, fed by two independent clients (kcat and kafkajs) in all three
# encodings. Checks exactly-once storage, dead letters with reasons, absorption of a
# producer-side redelivery, signed checkpoints, proofs, export and verification (and that a
# database administrator's edit is caught), and a clean SIGTERM shutdown that leaves no
# process behind.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # runuser

RUNFILES=${TEST_SRCDIR:-$PWD/..}/audit_trail
INGESTOR=$RUNFILES/services/ingestor/audit-ingestor
DEVBROKER=$RUNFILES/tools/devbroker/audit-devbroker
AUDITCTL=$RUNFILES/tools/auditctl/auditctl
QUERY=$RUNFILES/services/query/audit-query
GRPC_JS=$RUNFILES/tests/system/grpc_reflection_client.js
PROTO_ROOT=$(dirname "$(dirname "$(dirname "$(readlink -f "$RUNFILES/proto/audit/v1/event.proto")")")")
TOOLS_DIR=$(dirname "$(readlink -f "$RUNFILES/tools/package.json")")
JS=$RUNFILES/tests/system/kafkajs_publish.js
VERIFY_PROOF=$RUNFILES/tools/verify/verify_proof.py
PG_BIN=/usr/lib/postgresql/15/bin

fail() { echo "FAIL: $*" >&2; exit 1; }
[ -d "$TOOLS_DIR/node_modules/kafkajs" ] || fail "npm tools missing: run tools/dev setup"
for tool in kcat psql protoc node python3 openssl; do command -v $tool >/dev/null || fail "$tool not installed"; done

WORK=$(mktemp -d /tmp/audit-system-XXXXXX)
chmod 755 "$WORK"
cd "$WORK"  # a directory the postgres user can enter
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -f "$WORK/pg/PG_VERSION" ]; then as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" -eq 0 ]; then chown postgres "$WORK"; fi

# Wait for a condition (a command), up to $1 seconds.
wait_until() {
  local seconds=$1; shift
  for _ in $(seq 1 $((seconds * 10))); do "$@" && return 0; sleep 0.1; done
  return 1
}

echo "== PostgreSQL"
as_pg "$PG_BIN/initdb" -D "$WORK/pg" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w \
  -o "-k $WORK -c listen_addresses= -c fsync=off" start >/dev/null
SUPER="postgresql:///audit?host=$WORK&user=postgres"
psql -X -q -h "$WORK" -U postgres -d postgres -c "CREATE DATABASE audit"
"$AUDITCTL" migrate --pg_url="$SUPER"
psql -X -q "$SUPER" -c "CREATE ROLE ingestor LOGIN IN ROLE audit_writer; CREATE ROLE reader LOGIN IN ROLE audit_reader; CREATE ROLE query LOGIN IN ROLE audit_reader"
READER="postgresql:///audit?host=$WORK&user=reader"
q() { psql -X -tA "$READER" -c "$1"; }
# query_is SQL VALUE: re-evaluated on every call (for wait_until).
query_is() { [ "$(q "$1")" = "$2" ]; }

echo "== checkpoint signing key"
mkdir -m 700 "$WORK/keys"
KEY=$WORK/keys/checkpoint.key
"$AUDITCTL" keygen --key_out="$KEY" >/dev/null
[ "$(stat -c %a "$KEY")" = 600 ] || fail "private key mode"
"$AUDITCTL" keygen --key_out="$KEY" >/dev/null 2>&1 && fail "keygen overwrote a key"

echo "== Kafka (mock cluster) and ingestor"
"$DEVBROKER" --bootstrap_file="$WORK/bootstrap" >"$WORK/devbroker.log" 2>&1 &
PIDS+=($!)
wait_until 30 test -s "$WORK/bootstrap" || fail "dev broker did not start"
BROKERS=$(cat "$WORK/bootstrap")
AUDIT_KAFKA_BROKERS=$BROKERS AUDIT_INGESTOR_PG_URL="postgresql:///audit?host=$WORK&user=ingestor" \
  AUDIT_INGESTOR_SESSION_TIMEOUT_MS=6000 AUDIT_CHECKPOINT_KEY_FILE="$KEY" \
  AUDIT_CHECKPOINT_INTERVAL_MS=300 "$INGESTOR" >"$WORK/ingestor.log" 2>&1 &
INGESTOR_PID=$!
PIDS+=($INGESTOR_PID)

echo "== publish with kcat: structured JSON, binary mode, protobuf, and poison"
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
KCAT_JSON="{\"specversion\":\"1.0\",\"id\":\"kcat-json\",\"source\":\"/services/orders\",\"type\":\"com.acme.order.created\",\"subject\":\"order-k\",\"time\":\"$NOW\",\"data\":{\"total\":1.50}}"
echo "$KCAT_JSON" | kcat -P -b "$BROKERS" -t orders.events -k order-k -H "content-type=application/cloudevents+json"
echo '{"amount": 1.50}' | kcat -P -b "$BROKERS" -t payments.events -k order-k \
  -H ce_specversion=1.0 -H ce_id=kcat-bin -H ce_source=/services/payments \
  -H ce_type=com.acme.payment.authorized -H ce_subject=order-k -H ce_time="$NOW" \
  -H ce_causationid=kcat-json -H content-type=application/json
cat > "$WORK/event.txtpb" <<PB
id: "kcat-pb" source: "/services/shipping" type: "com.acme.shipment.shipped"
spec_version: "1.0" subject: "order-k" time { seconds: $(date +%s) }
data_content_type: "application/json" text_data: "{\"carrier\": \"DHL\"}"
PB
protoc -I "$PROTO_ROOT" --encode=audit.v1.Event "$PROTO_ROOT/audit/v1/event.proto" \
  < "$WORK/event.txtpb" > "$WORK/event.bin"
kcat -P -b "$BROKERS" -t shipping.events -k order-k -H content-type=application/protobuf "$WORK/event.bin"
echo 'definitely not an event' | kcat -P -b "$BROKERS" -t orders.events -k kcat-poison

echo "== publish with kafkajs: protobuf, structured JSON, binary mode, and poison"
NODE_PATH="$TOOLS_DIR/node_modules" KAFKAJS_NO_PARTITIONER_WARNING=1 \
  node "$JS" "$BROKERS" js "$PROTO_ROOT"

echo "== wait for the store"
wait_until 90 query_is 'SELECT count(*) FROM audit.events' 6 \
  || fail "events stored: $(q 'SELECT count(*) FROM audit.events'), want 6"
wait_until 30 query_is 'SELECT count(*) FROM audit.dead_letters' 2 \
  || fail "dead letters: $(q 'SELECT count(*) FROM audit.dead_letters'), want 2"

got=$(q "SELECT string_agg(event_id || ':' || type, ',' ORDER BY event_id) FROM audit.events")
want="js-bin:com.acme.shipment.shipped,js-json:com.acme.payment.authorized,js-pb:com.acme.order.created,kcat-bin:com.acme.payment.authorized,kcat-json:com.acme.order.created,kcat-pb:com.acme.shipment.shipped"
[ "$got" = "$want" ] || fail "stored events: $got"
[ "$(q "SELECT data::text FROM audit.events WHERE event_id = 'kcat-json'")" = '{"total": 1.50}' ] \
  || fail "kcat-json data"
[ "$(q "SELECT causation_id FROM audit.events WHERE event_id = 'kcat-bin'")" = kcat-json ] \
  || fail "kcat-bin causation"
dl=$(q "SELECT string_agg(k, ',' ORDER BY k) FROM (SELECT convert_from(raw_key, 'UTF8') || ':' || error_class AS k FROM audit.dead_letters) d")
[ "$dl" = "js-poison:invalid_time,kcat-poison:undecodable" ] || fail "dead letters: $dl"
[ "$(q "SELECT encode(raw_value, 'escape') FROM audit.dead_letters WHERE error_class = 'undecodable'")" = 'definitely not an event' ] \
  || fail "raw bytes of the dead letter"

echo "== a producer-side redelivery is absorbed"
echo "$KCAT_JSON" | kcat -P -b "$BROKERS" -t orders.events -k order-k -H "content-type=application/cloudevents+json"
# A marker behind it in the same partition: once it is stored, the redelivery was processed.
echo "{\"specversion\":\"1.0\",\"id\":\"marker\",\"source\":\"/services/orders\",\"type\":\"com.acme.order.note\",\"subject\":\"order-k\",\"time\":\"$NOW\"}" \
  | kcat -P -b "$BROKERS" -t orders.events -k order-k -H "content-type=application/cloudevents+json"
wait_until 30 query_is "SELECT count(*) FROM audit.events WHERE event_id = 'marker'" 1 \
  || fail "marker not stored"
[ "$(q "SELECT count(*) FROM audit.events WHERE event_id = 'kcat-json'")" = 1 ] || fail "stored twice"
[ "$(q 'SELECT count(*) = max(position) FROM audit.events')" = t ] || fail "positions have gaps"

echo "== query server: an independent gRPC client by reflection, and auditctl"
AUDIT_SERVER_PG_URL="postgresql:///audit?host=$WORK&user=query" \
  AUDIT_SERVER_TRUSTED_KEY_FILES="$KEY.pub" "$QUERY" --listen=127.0.0.1:0 \
  --ready_file="$WORK/query.ready" >"$WORK/query.log" 2>&1 &
QUERY_PID=$!
PIDS+=($QUERY_PID)
wait_until 30 test -s "$WORK/query.ready" || fail "query server did not start"
GRPC=$(cat "$WORK/query.ready")
js() { NODE_PATH="$TOOLS_DIR/node_modules" node "$GRPC_JS" "$GRPC" "$@"; }
[ "$(js list)" = '{"services":["audit.v1.AuditService","audit.v1.ProofService","grpc.health.v1.Health","grpc.reflection.v1alpha.ServerReflection"]}' ] \
  || fail "reflection list: $(js list)"
[ "$(js describe)" = '{"methods":["GetEvent","GetStatistics","GetSubjectHistory","ListDeadLetters","ListEvents","ReplayEvents"]}' ] \
  || fail "reflection describe: $(js describe)"
[ "$(js health)" = '{"ok":{"status":"SERVING"}}' ] || fail "health: $(js health)"
history=$(js call GetSubjectHistory '{"subject":"order-k"}')
echo "$history" | grep -q '"id":"kcat-json"' || fail "history by reflection: $history"
[ "$(echo "$history" | grep -o '"position"' | wc -l)" = 4 ] || fail "history size: $history"
bad=$(js call ListEvents '{"page_size":5000}')
[ "$bad" = '{"code":"INVALID_ARGUMENT","details":"page_size: must be between 1 and 1000 (or 0 for 100), got 5000"}' ] \
  || fail "bad request: $bad"
[ "$("$AUDITCTL" --server="$GRPC" history order-k --output=ndjson | wc -l)" = 4 ] || fail "auditctl history"
[ "$("$AUDITCTL" --server="$GRPC" replay --quiet | wc -l)" = 7 ] || fail "auditctl replay"
"$AUDITCTL" --server="$GRPC" dead-letters --output=ndjson | grep -q '"error_class":"invalid_time"' \
  || fail "auditctl dead-letters"

echo "== tamper evidence: checkpoints, proofs, export and verification"
wait_until 30 query_is 'SELECT max(tree_size) FROM audit.checkpoints' 7 \
  || fail "no checkpoint covers the log: $(q 'SELECT max(tree_size) FROM audit.checkpoints')"
"$AUDITCTL" --server="$GRPC" verify --public_key="$KEY.pub" --anchor_file="$WORK/anchor.json" \
  >"$WORK/verify.out" || fail "verify against the server: $(cat "$WORK/verify.out")"
grep -q '"tree_size":"7"' "$WORK/anchor.json" || fail "anchor not kept: $(cat "$WORK/anchor.json")"
grep -q '^positions 1..7 are proven by checkpoint seq' "$WORK/verify.out" \
  || fail "verify output: $(cat "$WORK/verify.out")"
"$AUDITCTL" --server="$GRPC" prove 3 --public_key="$KEY.pub" --anchor_file="$WORK/anchor.json" \
  | grep -q '^proven: leaf 2 of the tree' \
  || fail "auditctl prove"
# By hand: an independent checker (Python hashlib + openssl) of the same proof.
"$AUDITCTL" --server="$GRPC" prove 6 --public_key="$KEY.pub" --output=ndjson >"$WORK/proof.json"
python3 "$VERIFY_PROOF" "$KEY.pub" <"$WORK/proof.json" >"$WORK/by-hand.out" \
  || fail "by-hand proof check: $(cat "$WORK/by-hand.out")"
grep -q '^PROVEN$' "$WORK/by-hand.out" || fail "by-hand output: $(cat "$WORK/by-hand.out")"
sed 's/"offset":\([0-9]*\)/"offset":1\1/' "$WORK/proof.json" >"$WORK/proof-edited.json"
python3 "$VERIFY_PROOF" "$KEY.pub" <"$WORK/proof-edited.json" >/dev/null \
  && fail "the by-hand checker accepted an edited event"
"$AUDITCTL" --server="$GRPC" checkpoints --output=ndjson | grep -q '"tree_size":"7"' \
  || fail "auditctl checkpoints"
verified=$(js call audit.v1.ProofService/VerifyRange '{}')
echo "$verified" | grep -q '"ok":true' || fail "VerifyRange by reflection: $verified"
echo "$verified" | grep -q '"keys_pinned":true' || fail "VerifyRange keys: $verified"
"$AUDITCTL" --server="$GRPC" export "$WORK/log.bundle" 2>/dev/null || fail "export"
# Offline: no server (a closed port), no database.
"$AUDITCTL" --server=127.0.0.1:1 verify --bundle="$WORK/log.bundle" --public_key="$KEY.pub" \
  >"$WORK/bundle.out" || fail "bundle verify: $(cat "$WORK/bundle.out")"
grep -q '^OK$' "$WORK/bundle.out" || fail "bundle verify output"
line=$(grep -n '"event":' "$WORK/log.bundle" | sed -n 4p | cut -d: -f1)
sed "${line}s/\"type\":\"com\./\"type\":\"org./" "$WORK/log.bundle" > "$WORK/edited.bundle"
cmp -s "$WORK/log.bundle" "$WORK/edited.bundle" && fail "the bundle edit changed nothing"
rc=0; "$AUDITCTL" verify --bundle="$WORK/edited.bundle" --public_key="$KEY.pub" \
  >"$WORK/edited.out" || rc=$?
[ $rc -eq 1 ] || fail "an edited bundle verified (exit $rc)"
grep -q '^FAILED at position 4: ' "$WORK/edited.out" || fail "edited bundle: $(cat "$WORK/edited.out")"
"$AUDITCTL" keygen --key_out="$WORK/keys/other" >/dev/null
rc=0; "$AUDITCTL" verify --bundle="$WORK/log.bundle" --public_key="$WORK/keys/other.pub" \
  >"$WORK/other.out" || rc=$?
[ $rc -eq 1 ] && grep -q 'not trusted' "$WORK/other.out" || fail "wrong key: $(cat "$WORK/other.out")"

echo "== SIGTERM: clean shutdown"
kill -TERM "$INGESTOR_PID"
rc=0; wait "$INGESTOR_PID" || rc=$?
[ $rc -eq 0 ] || fail "ingestor exited with $rc"
grep -q '"msg":"ingestor stopped"' "$WORK/ingestor.log" || fail "no orderly stop in the log"
grep -q '"duplicates":1' "$WORK/ingestor.log" || fail "redelivery not counted as a duplicate"
if grep -q '"level":"error"' "$WORK/ingestor.log"; then fail "errors in the ingestor log"; fi

echo "== a database administrator edits an event: caught, with its position"
psql -X -q "$SUPER" -c "ALTER TABLE audit.events DISABLE TRIGGER USER;
  UPDATE audit.events SET subject = subject || '!' WHERE position = 5;
  ALTER TABLE audit.events ENABLE TRIGGER USER"
rc=0; "$AUDITCTL" --server="$GRPC" verify --public_key="$KEY.pub" >"$WORK/tampered.out" || rc=$?
[ $rc -eq 1 ] || fail "a tampered log verified (exit $rc)"
grep -q '^FAILED at position 5: ' "$WORK/tampered.out" || fail "tampered: $(cat "$WORK/tampered.out")"
kill -TERM "$QUERY_PID"
rc=0; wait "$QUERY_PID" || rc=$?
[ $rc -eq 0 ] || fail "query server exited with $rc"
echo "PASS"
