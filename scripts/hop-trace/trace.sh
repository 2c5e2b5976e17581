#!/bin/bash
# usage: trace.sh OUT -- command...   (root; an ftrace instance of its own, so nobody else's tracing is touched)
set -e
OUT=$1; shift; shift
T=/sys/kernel/tracing/instances/hop
echo 0 > $T/tracing_on
echo > $T/trace
echo mono > $T/trace_clock
echo 65536 > $T/buffer_size_kb
echo 1 > $T/options/record-tgid
echo 1 > $T/options/event-fork
echo > $T/set_event
for e in sched:sched_switch sched:sched_waking syscalls:sys_enter_sendmsg syscalls:sys_exit_sendmsg \
  syscalls:sys_enter_recvfrom syscalls:sys_exit_recvfrom syscalls:sys_enter_epoll_wait syscalls:sys_exit_epoll_wait \
  syscalls:sys_enter_epoll_pwait syscalls:sys_exit_epoll_pwait syscalls:sys_enter_write syscalls:sys_enter_read \
  syscalls:sys_enter_futex syscalls:sys_exit_futex $EXTRA; do echo $e >> $T/set_event; done
echo $$ > $T/set_event_pid
export HOP_MARK=$T/trace_marker
echo 1 > $T/tracing_on
"$@"
echo 0 > $T/tracing_on
cat $T/trace > $OUT
echo > $T/set_event_pid
echo > $T/set_event
