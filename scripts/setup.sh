#!/usr/bin/env bash
# Installs the system tools a fsm-px task needs, from Debian, when they are missing.
# Usage: scripts/setup.sh test|bench|demo
# It says what it installs and why; it never touches anything that is already present.
set -euo pipefail

mode="${1:-test}"
need=()   # Debian packages to install
why=()

have() { command -v "$1" >/dev/null 2>&1; }

# The deno running this task (under `npx deno task` it is not on PATH), else the one on PATH.
deno_bin() {
  local exe
  exe="$(readlink "/proc/$PPID/exe" 2>/dev/null || true)"
  case "${exe##*/}" in deno*) echo "$exe"; return ;; esac
  command -v deno 2>/dev/null || true
}

# npm dependencies fetched once, quietly: otherwise the first command prints a line per package and a
# warning about build scripts that nothing here needs (protobufjs' postinstall only checks versions).
prefetch() {
  local d out
  d="$(deno_bin)"
  [ -n "$d" ] || return 0
  if ! out="$("$d" install -q 2>&1)"; then
    echo "$out" >&2
    echo "fsm-px setup: fetching the npm dependencies failed (above)" >&2
    exit 1
  fi
}

# What comes next, so the silent type-check of the test files does not look like a hang.
next_step() {
  if [ "$mode" = test ]; then
    echo "fsm-px: type-checking the tests (about 15 s), then running them" >&2
  fi
}

case "$mode" in
  test)
    have nats-server || { need+=(nats-server); why+=("nats-server: integration tests start a real JetStream server on loopback"); }
    have promtool || { need+=(prometheus); why+=("prometheus: promtool validates /metrics and alert rules; the e2e test scrapes with a real Prometheus"); }
    have openssl || { need+=(openssl); why+=("openssl: the Pixie TLS tests make a throwaway certificate"); }
    /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null || { need+=(python3-prometheus-client); why+=("python3-prometheus-client: its strict OpenMetrics parser checks the exemplar exposition"); }
    have tcpdump || { need+=(tcpdump); why+=("tcpdump: packet-capture tests capture real RTP and WebSocket traffic on loopback"); }
    have ffmpeg || { need+=(ffmpeg); why+=("ffmpeg: a real RTP sender and Opus/G.722 transcoder for the packet-capture and codec tests"); }
    have chromium || { need+=(chromium); why+=("chromium: the web UI is tested in a real headless browser"); }
    ;;
  bench)
    have nats-server || { need+=(nats-server); why+=("nats-server: signature fan-out benchmark"); }
    have sox || { need+=(sox libsox-fmt-all); why+=("sox: builds the transcoding chains of the accuracy corpus"); }
    have fpcalc || { need+=(libchromaprint-tools); why+=("fpcalc: Chromaprint's fingerprinter, run side by side with analyze on the same audio"); }
    have tcpreplay || { need+=(tcpreplay); why+=("tcpreplay: replays RTP at a set rate on loopback for the live-capture benchmark"); }
    have tcpdump || { need+=(tcpdump); why+=("tcpdump: the live-capture benchmark captures with it"); }
    have ffmpeg || { need+=(ffmpeg); why+=("ffmpeg: G.722/Opus codec speed and the RTP packet benchmarks"); }
    [ -d /usr/share/asterisk/sounds/en_US_f_Allison ] || { need+=(asterisk-core-sounds-en-wav); why+=("asterisk-core-sounds-en-wav: real telephony speech (CC-BY-SA-3.0) for the corpus"); }
    { have sox && sox -h 2>/dev/null | grep -q 'amr-nb'; } || { need+=(libsox-fmt-all); why+=("libsox-fmt-all: sox's AMR-NB format (opencore-amrnb) for the AMR chain of the corpus"); }
    [ -d /usr/share/asterisk/sounds/es_MX_f_Allison ] || { need+=(asterisk-core-sounds-es-wav); why+=("asterisk-core-sounds-es-wav: Spanish prompts (the same speaker as the English ones, other words) for calls and a negative stream"); }
    [ -d /usr/share/asterisk/sounds/fr_CA_f_June ] || { need+=(asterisk-core-sounds-fr-wav); why+=("asterisk-core-sounds-fr-wav: French prompts (another speaker) as the second leg of the mixing chain"); }
    have espeak-ng || { need+=(espeak-ng); why+=("espeak-ng: synthetic speech in 9 languages and 18 voices for the corpus"); }
    ;;
  demo) ;;
  *) echo "setup.sh: unknown mode '$mode' (expected test, bench or demo)" >&2; exit 2 ;;
esac

prefetch
if [ ${#need[@]} -eq 0 ]; then
  next_step
  exit 0
fi

echo "fsm-px setup ($mode): installing from Debian:" >&2
for w in "${why[@]}"; do echo "  - $w" >&2; done
if [ "$(id -u)" != "0" ] || ! have apt-get; then
  echo "fsm-px setup: not root or no apt-get; install these yourself: ${need[*]}" >&2
  # Outside CI the unit tests run anyway and the tests that need a missing tool are skipped (each file
  # says which); in CI (CI=true) a missing tool is a failure, so CI never passes by running less.
  if [ "$mode" = test ] && [ "${CI:-}" != "true" ]; then
    echo "fsm-px setup: running the tests that need none of them; the others are skipped" >&2
    next_step
    exit 0
  fi
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Installing nats-server/prometheus also enables their systemd units on real hosts; we never use
# those daemons (tests start their own on free loopback ports), so keep them from starting here.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
echo "fsm-px setup ($mode): done" >&2
next_step
