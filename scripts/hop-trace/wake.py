import sys,bisect,collections,re
from parse import events
evs=list(events(sys.argv[1]))
poller={}
for e in evs:
    if e['ev']=='sys_recvfrom' and e['tid']!=e['tgid']: poller[e['tgid']]=e['tid']
P=set(poller.values())
t0=[e['t'] for e in evs if e['ev']=='tracing_mark_write' and e['rest'].strip()=='send 0'][-1]
waking={}  # tid -> (t, cpu of waker, target)
rows=collections.defaultdict(list)
cur={}
for e in evs:
    if e['t']<t0: continue
    if e['ev']=='sched_waking':
        m=re.search(r'pid=(\d+).*target_cpu=(\d+)',e['rest']); tid=int(m.group(1))
        waking[tid]=(e['t'],e['cpu'],int(m.group(2)),e['tid'])
    elif e['ev']=='sched_switch':
        m=re.search(r'prev_pid=(\d+).*prev_state=(\S+).*next_pid=(\d+)',e['rest']); nt=int(m.group(3))
        if nt in waking:
            t,wcpu,target,waker=waking.pop(nt)
            kind='poller' if nt in P else ('main' if nt in poller else 'other')
            same='same-cpu' if target==wcpu else 'other-cpu'
            prev_idle = m.group(1)=='0'
            rows[(kind,same,'from-idle' if prev_idle else 'preempt/after')].append((e['t']-t)*1e6)
def q(v,p): v=sorted(v); return v[int(p*(len(v)-1))]
for k,v in sorted(rows.items()):
    if len(v)>20: print(k, len(v), 'p50', round(q(v,.5)), 'p90', round(q(v,.9)))
