#!/usr/bin/env bash
# A throwaway, real S3 server for Sealpost's blob tests (driven by tests/helpers/s3.ts):
# single-node Ceph (monitor + in-memory OSD + radosgw) on loopback. Unlike s3rver, radosgw
# verifies SigV4 signatures and presigned URLs (wrong secret, tampered or expired URL → 403), so
# it proves our S3 code the way AWS, R2, Tigris or MinIO would.
#
#   ceph_rgw.sh start DIR [S3_PORT]   → prints shell exports for the S3 variables; ready in ~15 s
#   ceph_rgw.sh stop DIR
#
# Needs Debian's packages: apt-get install -y ceph-mon ceph-osd radosgw
# Ports: S3 on S3_PORT (default 7480); the monitor on S3_PORT+1 and S3_PORT+2 (v2, v1).
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR [S3_PORT]" >&2; exit 2; }
if [ "$cmd" = stop ]; then
  for p in rgw osd mon; do
    [ -f "$dir/$p.pid" ] || continue
    pid=$(cat "$dir/$p.pid"); kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  exit 0
fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR [S3_PORT]" >&2; exit 2; }
for b in ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool; do
  command -v "$b" >/dev/null || { echo "missing $b: apt-get install -y ceph-mon ceph-osd radosgw" >&2; exit 3; }
done
port=${3:-7480}; mon2=$((port + 1)); mon1=$((port + 2))
for p in "$port" "$mon2" "$mon1"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "port $p is in use; pick another S3_PORT" >&2; exit 4; fi
done
rm -rf "$dir"; mkdir -p "$dir"/{mon,osd,run,rgw}; cd "$dir"
fsid=$(cat /proc/sys/kernel/random/uuid)
cat > ceph.conf <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]
public_addr = 127.0.0.1
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_mon_client_mode = crc
ms_client_mode = crc
ms_mon_service_mode = crc
ms_service_mode = crc
ms_cluster_mode = crc
ms_mon_cluster_mode = crc
ms_bind_ipv6 = false
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_max_pg_per_osd = 1000
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
osd_objectstore = memstore
memstore_device_bytes = 2147483648
run_dir = $dir/run
admin_socket = $dir/run/\$name.asok
log_file = $dir/\$name.log
keyring = $dir/keyring
mon_data = $dir/mon/\$cluster-\$id
osd_data = $dir/osd/\$cluster-\$id
[client.rgw.test]
rgw_frontends = beast endpoint=127.0.0.1:$port
rgw_data = $dir/rgw
CONF
ceph-authtool --create-keyring keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" --fsid "$fsid" monmap >/dev/null
ceph-mon --mkfs -i a --monmap monmap -c ceph.conf
ceph-mon -f -i a -c ceph.conf >mon.out 2>&1 & echo $! > mon.pid
for _ in $(seq 1 120); do timeout 5 ceph -c ceph.conf -s >/dev/null 2>&1 && break; sleep 0.5; done
id=$(ceph -c ceph.conf osd create); mkdir -p "osd/ceph-$id"; ceph-osd -i "$id" --mkfs -c ceph.conf >/dev/null 2>&1
ceph-osd -f -i "$id" -c ceph.conf >osd.out 2>&1 & echo $! > osd.pid
radosgw -f -n client.rgw.test -c ceph.conf >rgw.out 2>&1 & echo $! > rgw.pid
for _ in $(seq 1 120); do curl -sf -m 2 "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.5; done
curl -sf -m 2 "http://127.0.0.1:$port/" >/dev/null || { echo "radosgw did not come up; see $dir/*.out" >&2; exit 1; }
radosgw-admin -c ceph.conf user create --uid=test --display-name=test \
  --access-key=TESTACCESSKEY --secret-key=TESTSECRETKEY0123456789 >/dev/null 2>&1
cat <<ENV
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$port
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=TESTACCESSKEY
export AWS_SECRET_ACCESS_KEY=TESTSECRETKEY0123456789
ENV
