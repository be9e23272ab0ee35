#!/usr/bin/env bash
# The interactive prompt of p2ppeer connect, in a real terminal (tmux): an
# event that arrives while a line is being typed prints above it, and the
# line is still there to finish; a mistyped command is shown and forgiven
# (a clean quit exits 0); Ctrl-C at the prompt, or while --wait waits,
# exits 130 without an error.
source "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || fail "tmux is required (make deps installs it)"
TMUX_SOCKET="p2ppeer-clitest-$$"
trap 'tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null || true; cleanup' EXIT

start_relay

# SESSION is the tmux session the helpers below look at.
SESSION=prompt
# screen: what the terminal shows, without colours.
screen() { tmux -L "$TMUX_SOCKET" capture-pane -p -t "$SESSION"; }
# shows TEXT: the terminal shows TEXT somewhere.
shows() { screen | grep -qF -- "$1"; }
# last_line: the terminal's last line with something on it.
last_line() { screen | sed '/^[[:space:]]*$/d' | tail -n 1; }
keys() { tmux -L "$TMUX_SOCKET" send-keys -t "$SESSION" "$@"; }
# in_terminal NAME ARGS...: run p2ppeer ARGS in a new terminal, which
# becomes SESSION; the terminal says "exit status N" when it ends.
in_terminal() {
	SESSION=$1
	shift
	tmux -L "$TMUX_SOCKET" new-session -d -s "$SESSION" -x 120 -y 30 \
		"'$BIN/p2ppeer' --url '$URL' $*; echo \"exit status \$?\"; sleep 30"
}

in_terminal prompt --id A connect
wait_for "the prompt" 10 shows 'A>'

# B pairs with A from a script.
piped_peer B --id B --json connect --target A
B_PID=$LAST_PID
wait_for "B to pair" 10 has "$WORK/B.out" '"type":"paired","peer":"A"'
wait_for "the prompt to name the peer" 10 shows 'A<>B>'

# Half a line typed, then an event arrives.
keys -l 'emit hel'
wait_for "the typed text" 5 shows 'A<>B> emit hel'
echo 'emit ping {"n": 1}' >&7
wait_for "the event on screen" 10 shows 'event     ping {"n":1} from B'
[ "$(last_line)" = 'A<>B> emit hel' ] || fail "the line being typed was broken: $(screen)"

# Finish the line; it is sent as typed.
keys -l 'lo 2'
keys Enter
wait_for "B to get hello" 10 has "$WORK/B.out" '"event":"hello","args":[2]'
keys -l 'ack question "a b"'
keys Enter
wait_for "the answer on screen" 10 shows 'answer    question -> "a b"'
keys -l 'help'
keys Enter
wait_for "the help" 10 shows 'ack EVENT [ARG...]'
# Mistakes are shown, one line each, and forgiven.
keys -l 'emti x'
keys Enter
wait_for "the unknown command" 10 shows 'p2ppeer: unknown command "emti" (type help)'
keys -l 'ack slow {"x": [1, 2'
keys Enter
wait_for "the unbalanced JSON" 10 shows 'p2ppeer: column 10: unbalanced JSON: ]} missing at the end'
if has "$WORK/B.out" '"event":"slow"'; then fail "a line with unbalanced JSON was sent"; fi
keys -l 'quit'
keys Enter
wait_for "connect to exit" 10 shows 'exit status 0'
wait_for "B to see A unpair" 10 has "$WORK/B.out" '"type":"unpaired","peer":"A","reason":"ended"'
echo quit >&7
wait "$B_PID" || fail "B exited $?"

# Ctrl-C on an empty line: exit 130, quietly.
in_terminal ctrlc --id C connect
wait_for "the prompt" 10 shows 'C>'
keys -l 'half a line'
keys C-c
wait_for "the line cleared" 10 shows '^C'
keys C-c
wait_for "connect to exit" 10 shows 'exit status 130'
if screen | grep -q 'p2ppeer:'; then fail "Ctrl-C printed an error: $(screen)"; fi

# Ctrl-C while --wait waits for a target: exit 130, quietly.
in_terminal waiting --id D connect --target NOBODY --wait
wait_for "D to wait" 10 grep -q 'msg="request refused" id=D code=OFFLINE' "$WORK/p2pd-0.log"
keys C-c
wait_for "connect to exit" 10 shows 'exit status 130'
if screen | grep -q 'p2ppeer:'; then fail "Ctrl-C printed an error: $(screen)"; fi
echo "prompt ok"
