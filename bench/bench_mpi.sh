#!/usr/bin/env bash
# bench_mpi.sh — data-parallel `easyrec train` on Open MPI, measured (issue 16; docs/distributed.md).
#
#  1. examples/s, one thread per process, the same global batch G = 2B, steady state (steps 3 to
#     the last) and over the whole run (from step 1: with the first steps' one-time costs):
#       1 process, --batch-size G                  (the fastest single-process way: no recompute)
#       1 process, --batch-size B --grad-accum 2   (the 2 ranks' micro-batches, gradient caching)
#       mpirun -np 2 --bind-to core, --batch-size B each (shared memory between the ranks)
#     speed-up and efficiency against the first; and the 2 ranks each in a session of its own
#     (setsid): with the kernel's autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled)
#     CPU time is shared per session, so on a machine busy with other sessions the two ranks of
#     one mpirun split one session's share — no faster than one process; on a quiet machine the
#     two lines agree.
#     Data: a generated synthetic catalog (--data D1,D2 to use others).
#  2. the same 2 ranks as two "hosts": network namespaces joined by a veth pair, Open MPI over
#     TCP only (btl tcp,self on the veth's subnet), mpirun in one namespace starting the other
#     rank's daemon through `ip netns exec` as its rsh agent. Needs root and iproute2; when a
#     namespace cannot be made the script says why and goes on.
#  3. where a step's time goes — compute, embeddings all-gather, gradient all-reduce, optimiser
#     (train_log.jsonl's time_*_s of rank 0, mean over the steps after the first two) — the
#     bytes all-reduced per step, and a paper model of 8 and 64 ranks from those times (ring
#     all-reduce: 2(R-1)/R of the gradient per rank, plus a latency per bucket and step).
#
# Every number is printed with the load average (1 min) before and after its run. Unattended:
# no prompts, work files in a temporary directory, namespaces removed at exit.
#
#   bench/bench_mpi.sh [--batch "8 64"] [--steps 12] [--preset tiny|small] [--no-netns]
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES="8 64" STEPS=12 PRESET=tiny NETNS=1 DATA=""
while [ $# -gt 0 ]; do
  case $1 in
    --batch) BATCHES=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --preset) PRESET=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --no-netns) NETNS=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$STEPS" -ge 3 ] || { echo "bench_mpi: --steps must be at least 3 (the steady rate is over steps 3 to the last)" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "bench_mpi: mpirun not found (tools/setup.sh --mpi)" >&2; exit 1; }
[ -x build-mpi/easyrec ] || make -j2 MPI=1 >/dev/null
[ -d build-mpi/fixtures/train ] || make MPI=1 build-mpi/fixtures/.stamp >/dev/null
E=$(pwd)/build-mpi/easyrec
W=$(mktemp -d /tmp/bench-mpi-XXXXXX)
NS0=erbench0-$$ NS1=erbench1-$$
cleanup() {
  if [ "$NETNS" = 1 ]; then ip netns del "$NS0" 2>/dev/null || true; ip netns del "$NS1" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT
ROOT=""; [ "$(id -u)" -eq 0 ] && ROOT=--allow-run-as-root
$E init --vocab ../shared/vocab/roberta-base --preset "$PRESET" --output "$W/init" >/dev/null 2>&1
# default data: the synthetic catalog, 2 x 640 users = 1280 examples, a multiple of every global
# batch up to 256, so no step is a short epoch tail that leaves a rank without a micro-batch
if [ -z "$DATA" ]; then
  $E catalog --output "$W/data" --users 640 --domains sports,books --quiet
  DATA=$W/data/sports,$W/data/books
fi
M="$W/init/model.safetensors"
# parameters = (file size - 8 - header length) / 4: every tensor is float32
hlen=$(od -An -t u8 -N8 "$M" | tr -d ' ')
NPAR=$(( ($(stat -c %s "$M") - 8 - hlen) / 4 ))
BYTES=$((4 * NPAR))
NB=$(( (NPAR + 4194303) / 4194304 )) # all-reduce buckets of 4 Mi floats (src/core/comm_mpi.c)
COMMON="train --init $W/init --data $DATA --epochs 1000 --max-steps $STEPS --lr 1e-4 --quiet --eval-steps 0 --val-data none --threads 1"
load() { cut -d' ' -f1 /proc/loadavg; }
# mean of key over log lines after the first two steps
mean() { grep '"examples_per_s"' "$1/train_log.jsonl" | tail -n +3 | grep -o "\"$2\": [0-9.e+-]*" |
  awk '{s += $2; n++} END {printf "%.6f", n ? s / n : 0}'; }
# smallest value of key over the steps after the first two (a collective's own cost, least
# inflated by a peer that arrives late: on a loaded machine the mean mostly measures waiting)
minv() { grep '"examples_per_s"' "$1/train_log.jsonl" | tail -n +3 | grep -o "\"$2\": [0-9.e+-]*" |
  awk 'NR == 1 || $2 < m {m = $2} END {printf "%.6f", NR ? m : 0}'; }
# examples/s of the whole run (from its first step, so the first steps' one-time costs count:
# first touch of every buffer, at ~14 us per page fault in these VMs) and steady-state (steps 3
# to the last: Δexamples / Δelapsed between the second and the last line, the window the
# phase means cover)
rate() { grep '"examples_per_s"' "$1/train_log.jsonl" | tail -1 | grep -o '"examples_per_s": [0-9.e+-]*' | cut -d' ' -f2; }
steady() { grep '"examples_per_s"' "$1/train_log.jsonl" | sed -n '2p;$p' | grep -o '"\(examples_per_s\|elapsed_s\)": [0-9.e+-]*' |
  awk '{v[NR] = $2} END {e0 = v[1] * v[2]; e1 = v[3] * v[4]; printf "%.2f", (e1 - e0) / (v[4] - v[2])}'; }
# run OUT CMD...: runs CMD --output OUT; OUT.res = "steady_rate load_before load_after whole_run_rate"; status of CMD
run() { local out=$1; shift; local l0; l0=$(load)
  if ! "$@" --output "$out" >"$out.stdout" 2>&1; then echo "bench_mpi: failed: $*" >&2; tail -5 "$out.stdout" >&2; return 1; fi
  echo "$(steady "$out") $l0 $(load) $(rate "$out")" >"$out.res"; }
phases() { printf 'compute %.1f ms, all-gather+wait %.1f ms, all-reduce %.1f ms, optimiser %.1f ms' \
  "$(echo "1000 * $(mean "$1" time_compute_s)" | bc -l)" "$(echo "1000 * $(mean "$1" time_gather_s)" | bc -l)" \
  "$(echo "1000 * $(mean "$1" time_allreduce_s)" | bc -l)" "$(echo "1000 * $(mean "$1" time_update_s)" | bc -l)"; }

# ---- two "hosts": network namespaces and a veth pair ----
HOSTS_OK=0
if [ "$NETNS" = 1 ]; then
  if err=$( { ip netns add "$NS0" && ip netns add "$NS1" && ip link add erb0-$$ type veth peer name erb1-$$ &&
      ip link set erb0-$$ netns "$NS0" && ip link set erb1-$$ netns "$NS1" &&
      ip -n "$NS0" addr add 10.77.0.1/24 dev erb0-$$ && ip -n "$NS1" addr add 10.77.0.2/24 dev erb1-$$ &&
      ip -n "$NS0" link set erb0-$$ up && ip -n "$NS1" link set erb1-$$ up &&
      ip -n "$NS0" link set lo up && ip -n "$NS1" link set lo up; } 2>&1); then
    HOSTS_OK=1
    printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' >"$W/hosts"
    # the rsh agent: "host" 10.77.0.2 is the second namespace (the command comes as one string)
    printf '#!/bin/sh\nshift\nexec ip netns exec %s sh -c "$*"\n' "$NS1" >"$W/agent"
    chmod +x "$W/agent"
  else
    echo "two-host run skipped: network namespaces cannot be made here: $err"
  fi
fi
# --bind-to none: each "host"'s daemon would bind its one rank to core 0 — the same physical
# core for both, since the two hosts are one machine — and the ranks would share it
TCP="--hostfile $W/hosts --mca plm_rsh_agent $W/agent --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 --bind-to none"

echo "bench_mpi: preset $PRESET, $NPAR parameters, $STEPS steps a run, one thread per process; $(nproc) cores"
echo "all-reduced per step: $BYTES bytes (the float32 gradient, 4 x parameters; $NB buckets)"
mpirun $ROOT -np 2 --bind-to core --map-by core --report-bindings true 2>&1 | grep -o 'rank [0-9] bound.*' || true
for B in $BATCHES; do
  G=$((2 * B))
  echo
  echo "== global batch $G (2 ranks x $B) =="
  run "$W/one-$B" $E $COMMON --batch-size "$G"
  run "$W/acc-$B" $E $COMMON --batch-size "$B" --grad-accum 2
  run "$W/two-$B" mpirun $ROOT -np 2 --bind-to core --map-by core $E $COMMON --batch-size "$B"
  run "$W/ses-$B" mpirun $ROOT -np 2 --bind-to core --map-by core setsid $E $COMMON --batch-size "$B"
  read -r r1 a0 a1 w1 <"$W/one-$B.res"
  read -r ra b0 b1 wa <"$W/acc-$B.res"
  read -r r2 c0 c1 w2 <"$W/two-$B.res"
  read -r rn n0 n1 wn <"$W/ses-$B.res"
  echo "examples/s: steady state (steps 3-$STEPS) | whole run (from step 1)"
  printf '1 process, batch %-4d        %7.1f | %7.1f examples/s   load %s -> %s   %s\n' "$G" "$r1" "$w1" "$a0" "$a1" "$(phases "$W/one-$B")"
  printf '1 process, batch %d x accum 2 %7.1f | %7.1f examples/s   load %s -> %s   %s\n' "$B" "$ra" "$wa" "$b0" "$b1" "$(phases "$W/acc-$B")"
  printf '2 ranks (shared memory)      %7.1f | %7.1f examples/s   load %s -> %s   %s\n' "$r2" "$w2" "$c0" "$c1" "$(phases "$W/two-$B")"
  printf 'speed-up %.2fx steady (goal >= 1.8x), efficiency %.0f%%; whole run %.2fx\n' "$(echo "$r2 / $r1" | bc -l)" \
    "$(echo "50 * $r2 / $r1" | bc -l)" "$(echo "$w2 / $w1" | bc -l)"
  printf '2 ranks, a session each      %7.1f | %7.1f examples/s   load %s -> %s   %s\n' "$rn" "$wn" "$n0" "$n1" "$(phases "$W/ses-$B")"
  printf 'speed-up %.2fx steady; whole run %.2fx\n' "$(echo "$rn / $r1" | bc -l)" "$(echo "$wn / $w1" | bc -l)"
  if [ "$HOSTS_OK" = 1 ]; then
    if run "$W/tcp-$B" ip netns exec "$NS0" timeout 600 mpirun $ROOT -np 2 $TCP $E $COMMON --batch-size "$B"; then
      read -r rt d0 d1 wt <"$W/tcp-$B.res"
      printf '2 "hosts" (TCP over veth)    %7.1f | %7.1f examples/s   load %s -> %s   %s\n' "$rt" "$wt" "$d0" "$d1" "$(phases "$W/tcp-$B")"
      printf 'speed-up %.2fx steady, efficiency %.0f%%; whole run %.2fx\n' "$(echo "$rt / $r1" | bc -l)" \
        "$(echo "50 * $rt / $r1" | bc -l)" "$(echo "$wt / $w1" | bc -l)"
    fi
  fi
  # ---- paper model: R ranks x batch B each (the global batch grows with R, as with DDP) ----
  # step(R) = compute(B) + optimiser + all-gather(R) + all-reduce(R); ring all-reduce of S bytes:
  # 2(R-1)/R S / bw + 2(R-1) NB lat. bw from the 2-rank all-reduce (S / t: 2(R-1)/R = 1), lat
  # from the all-gather (R-1 = 1 latency; its bytes are negligible) — both the fastest step's,
  # compute and optimiser the mean. One rank alone: compute + optimiser. Not modelled: the contrastive loss over the global batch (O(R^2 B^2 C),
  # 0.3 GFLOP at 64 x 8 x 128) and stragglers.
  links="shm:$W/two-$B"; [ -f "$W/tcp-$B.res" ] && links="$links tcp:$W/tcp-$B"
  echo "paper model, $B examples per rank (times from the 2-rank runs above):"
  for l in $links; do
    d=${l#*:}
    awk -v tc="$(mean "$d" time_compute_s)" -v tu="$(mean "$d" time_update_s)" -v tg="$(minv "$d" time_gather_s)" \
        -v ta="$(minv "$d" time_allreduce_s)" -v S="$BYTES" -v NB="$NB" -v B="$B" -v name="${l%%:*}" 'BEGIN {
      lat = tg; bw = S / (ta > 2 * NB * lat ? ta - 2 * NB * lat : ta); one = B / (tc + tu)
      printf "  %s link: %.2f GB/s, %.0f us latency (fastest all-reduce %.1f ms, all-gather %.1f ms)\n", name, bw / 1e9, lat * 1e6, ta * 1e3, tg * 1e3
      for (i = 1; i <= 4; i++) { R = (i == 1 ? 2 : i == 2 ? 8 : i == 3 ? 64 : 0); if (!R) break
        ar = 2 * (R - 1) / R * S / bw + 2 * (R - 1) * NB * lat; ag = (R - 1) * lat
        step = tc + tu + ag + ar; thr = R * B / step
        printf "    %2d ranks: step %.1f ms (all-reduce %.1f ms), %.1f examples/s, %.2fx one rank, efficiency %.0f%%\n", R, step * 1e3, ar * 1e3, thr, thr / one, 100 * thr / (R * one) } }'
  done
done
