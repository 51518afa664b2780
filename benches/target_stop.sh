#!/usr/bin/env bash
# Measures the round trip of `ferret --target ssh://... stop` against a
# local `ferret stop` of the same daemon, alternating the two, and `ssh
# HOST true` alone (what SSH itself costs), and the target stop again over
# an SSH connection shared with ControlMaster (what a user who sets
# FERRET_SSH_COMMAND with ControlMaster/ControlPersist pays per command). The target is this host, behind
# a temporary OpenSSH server on 127.0.0.1 with keys of its own (needs
# Debian's openssh-server and openssh-client), so the figures are SSH and
# the bridge, not a network. Each stop is of a running session with 1,000
# events written; prints each run and the medians, in milliseconds of wall
# time of the whole command.
#
# usage: benches/target_stop.sh [RUNS]      (default: 20)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
cargo build --release -q -p ferret-cli
ferret=$PWD/target/release/ferret
dir=$(mktemp -d /tmp/ferret-bench.XXXXXX)
sock=$dir/control.sock
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key"
cp "$dir/user_key.pub" "$dir/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
user=$(id -un)
cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1:$port
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
AllowUsers $user
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel ERROR
CONF
echo "[127.0.0.1]:$port $(cat "$dir/host_key.pub")" >"$dir/known_hosts"
mkdir -p /run/sshd
/usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
sshd=$!
"$ferret" --socket "$sock" daemon 2>"$dir/daemon.log" &
daemon=$!
trap 'kill $daemon $sshd 2>/dev/null; wait $daemon $sshd 2>/dev/null; rm -rf "$dir"' EXIT
export FERRET_SSH_COMMAND="ssh -F /dev/null -i $dir/user_key -o IdentitiesOnly=yes -o UserKnownHostsFile=$dir/known_hosts -o StrictHostKeyChecking=yes -o LogLevel=ERROR"
export FERRET_REMOTE_FERRET=$ferret
target="ssh://$user@127.0.0.1:$port$sock"
for _ in $(seq 200); do "$ferret" --socket "$sock" list >/dev/null 2>&1 && break; sleep 0.05; done
for _ in $(seq 200); do $FERRET_SSH_COMMAND -p "$port" "$user@127.0.0.1" true 2>/dev/null && break; sleep 0.05; done

ms() { python3 -c 'import sys; print("%.1f" % ((int(sys.argv[2]) - int(sys.argv[1])) / 1e6))' "$1" "$2"; }
mux="-o ControlMaster=auto -o ControlPath=$dir/mux-%C -o ControlPersist=600"
printf '%-4s %12s %12s %12s %12s\n' run local_ms target_ms ssh_true_ms shared_ms
results=$dir/results
for run in $(seq "$runs"); do
  for how in local target shared; do
    name=$how$run
    "$ferret" --socket "$sock" start "$name" -p Bench.Stop -f "$dir/$name.ferret" >/dev/null 2>&1
    "$ferret" --socket "$sock" emit --provider Bench.Stop --count 1000 >/dev/null
    t0=$(date +%s%N)
    case $how in
      local) "$ferret" --socket "$sock" stop "$name" >/dev/null ;;
      target) "$ferret" --target "$target" stop "$name" >/dev/null ;;
      shared) FERRET_SSH_COMMAND="$FERRET_SSH_COMMAND $mux" "$ferret" --target "$target" stop "$name" >/dev/null ;;
    esac
    t1=$(date +%s%N)
    eval "${how}_ms=\$(ms $t0 $t1)"
  done
  t0=$(date +%s%N)
  $FERRET_SSH_COMMAND -p "$port" "$user@127.0.0.1" true
  t1=$(date +%s%N)
  ssh_ms=$(ms "$t0" "$t1")
  printf '%-4s %12s %12s %12s %12s\n' "$run" "$local_ms" "$target_ms" "$ssh_ms" "$shared_ms"
  echo "$local_ms $target_ms $ssh_ms $shared_ms" >>"$results"
done
python3 - "$results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
cols = list(zip(*rows))
med = [statistics.median(c) for c in cols]
print("median   local %.1f ms   target %.1f ms   ssh true %.1f ms   shared connection %.1f ms"
      % (med[0], med[1], med[2], med[3]))
print("         target/local %.1f x   target - ssh true %.1f ms   shared/local %.1f x"
      % (med[1] / med[0], med[1] - med[2], med[3] / med[0]))
PY
