import sys,bisect,collections,re
from parse import events
evs=list(events(sys.argv[1]))
poller={}
for e in evs:
    if e['ev']=='sys_recvfrom' and e['tid']!=e['tgid']: poller[e['tgid']]=e['tid']
members=sorted(poller)
t00=[e['t'] for e in evs if e['ev']=='tracing_mark_write' and e['rest'].strip()=='send 0'][-1]
marks=collections.defaultdict(list); recv448=collections.defaultdict(list); evw=collections.defaultdict(list)
sm_enter=collections.defaultdict(list); pin=collections.defaultdict(list); minc=collections.defaultdict(list)
for e in evs:
    g,tid,t,ev,r=e['tgid'],e['tid'],e['t'],e['ev'],e['rest']
    if ev=='tracing_mark_write': marks[(g,r.strip().split()[0])].append((t,r.strip()))
    elif ev=='sys_recvfrom' and '->' in r and poller.get(g)==tid and int(r.split('->')[1],16)==0x448: recv448[g].append(t)
    elif ev=='sys_write' and 'count: 8)' in r and poller.get(g)==tid: evw[g].append(t)
    elif ev=='sys_sendmsg' and '->' not in r and tid==g: sm_enter[g].append(t)
    elif ev=='sched_switch':
        nt=int(re.search(r'next_pid=(\d+)',r).group(1))
        for m in members:
            if nt==poller[m]: pin[m].append(t)
            if nt==m: minc[m].append(t)
def nxt(l,t):
    i=bisect.bisect_left(l,t); return l[i] if i<len(l) else None
def nxtm(key,t):
    ts=[x[0] for x in marks[key]]; i=bisect.bisect_left(ts,t); return ts[i] if i<len(ts) else None
A=[k for k in marks if k[1]=='send'][0][0]
sends=[x for x in marks[(A,'send')] if x[0]>=t00]
rows=collections.defaultdict(list)
for t0,txt in sends:
    k=txt.split()[1]; s1=nxt(sm_enter[A],t0)
    rows['sender: send() -> first sendmsg'].append(s1-t0)
    for R in members:
        if R==A: continue
        rd=nxt(recv448[R],s1)
        if rd is None or rd-s1>0.05: continue
        pi=[x for x in pin[R] if s1<=x<=rd]
        pu=nxtm((R,'push'),rd)
        dl=[t for t,x in marks[(R,'deliver')] if x==f'deliver {k}' and t>t0]
        rows['sendmsg -> poller on a CPU'].append((pi[0] if pi else s1)-s1)
        rows['sendmsg -> recv of the slot'].append(rd-s1)
        rows['recv of the slot -> push (hook, wake, step)'].append(pu-rd)
        rows['hop 1: sendmsg -> push'].append(pu-s1)
        if dl: rows['send -> delivery at a receiver'].append(dl[0]-t0)
# all wakes: eventfd write -> main on cpu, -> arrival
for R in members:
    for w in evw[R]:
        if w<t00: continue
        mi=nxt(minc[R],w); ar=nxtm((R,'arrival'),w)
        if mi and mi-w<0.01: rows['eventfd write -> main on a CPU'].append(mi-w)
        if ar and ar-w<0.01: rows['eventfd write -> arrival callback'].append(ar-w)
def q(v,p): v=sorted(v); return v[int(p*(len(v)-1))]*1e6
for k,v in rows.items(): print(f'{k:44s} p50 {q(v,.5):5.0f}  p90 {q(v,.9):5.0f}  n={len(v)}')
