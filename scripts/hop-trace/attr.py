import sys,re,collections,bisect
from parse import events
fn=sys.argv[1]; N=int(sys.argv[2]) if len(sys.argv)>2 else 300; SHOW=int(sys.argv[3]) if len(sys.argv)>3 else 0
evs=list(events(fn))
poller={}; pred={}
for e in evs:
    if e['ev']=='sys_recvfrom' and e['tid']!=e['tgid']: poller[e['tgid']]=e['tid']
members=sorted(poller)
for e in evs:
    if e['ev']=='sys_sendmsg' and e['tgid'] in poller and e['tid']!=e['tgid']: pred[e['tgid']]=e['tid']
parent=None
for e in evs:
    if e['comm']=='node' and e['tgid'] not in poller and e['tgid']>0: parent=e['tgid']; break
tg={}
for e in evs: tg[e['tid']]=e['tgid']
def role(tid):
    if tid==0: return 'idle'
    g=tg.get(tid)
    if g in poller:
        if tid==g: return 'main'
        if tid==poller[g]: return 'poller'
        if tid==pred.get(g): return 'predicate'
        return 'mthread'
    if g==parent: return 'parent' if tid==g else 'pthread'
    return 'foreign'
# segments per cpu
segs=collections.defaultdict(list) # cpu -> [(t,tid)] start of running tid
for e in evs:
    if e['ev']=='sched_switch':
        m=re.search(r'next_comm=(.*) next_pid=(\d+)',e['rest']); tid=int(m.group(2))
        segs[e['cpu']].append((e['t'],tid))
        if tid not in tg:
            tg[tid]=-2 if m.group(1).startswith('swapper') else -3
        if m.group(1).startswith('swapper'): tg[tid]=-2
def ran(cpu,t0,t1):
    out=collections.Counter(); s=segs[cpu]; ts=[x[0] for x in s]
    i=max(0,bisect.bisect_right(ts,t0)-1)
    while i<len(s) and s[i][0]<t1:
        a=max(s[i][0],t0); b=min(s[i+1][0] if i+1<len(s) else t1,t1)
        tid=s[i][1]; r='idle' if tg.get(tid)==-2 else role(tid)
        if b>a: out[r]+=(b-a)*1e6
        i+=1
    return out
marks=collections.defaultdict(list) # (tgid,text)->times
for e in evs:
    if e['ev']=='tracing_mark_write': marks[(e['tgid'],e['rest'].strip())].append(e['t'])
sender=[g for g in members if any(k[0]==g and k[1].startswith('send ') for k in marks)][0]
sm=sorted((marks[k][-1],int(k[1].split()[1])) for k in marks if k[0]==sender and k[1].startswith('send '))
ks=[k for _,k in sm[-N:]]
tot=collections.Counter(); lat=[]; n=0
def nxt(l,t):
    i=bisect.bisect_left(l,t); return l[i] if i<len(l) else None
for k in ks:
    t0=marks[(sender,f'send {k}')][-1]
    dl=[marks[(g,f'deliver {k}')][-1] for g in members if marks.get((g,f'deliver {k}'))]
    if len(dl)<3: continue
    t1=max(dl); lat.append((t1-t0)*1e6); n+=1
    for cpu in segs: tot.update(ran(cpu,t0,t1))
    if SHOW and n<=SHOW:
        print(f'--- k={k} latency {(t1-t0)*1e6:.0f}us')
        tl=[]
        for e in evs:
            if t0-0.00001<=e['t']<=t1+0.00001 and (e['ev'] in('tracing_mark_write','sched_switch') or (e['ev'] in ('sys_sendmsg','sys_recvfrom') and '->' in e['rest']) or (e['ev']=='sys_write')):
                tid=e['tid']; r=role(tid); g=tg.get(tid)
                who=f"{members.index(g) if g in members else 'P' if g==parent else 'x'}:{r}"
                txt=e['rest'][:90] if e['ev']!='sched_switch' else '-> '+ re.search(r'next_pid=(\d+)',e['rest']).group(1)+' '+(lambda t:(str(members.index(tg.get(t))) if tg.get(t) in members else 'P' if tg.get(t)==parent else 'x')+':'+('idle' if tg.get(t)==-2 else role(t)))(int(re.search(r'next_pid=(\d+)',e['rest']).group(1)))+' prev_state='+re.search(r'prev_state=(\S+)',e['rest']).group(1)
                tl.append(f"{(e['t']-t0)*1e6:7.0f} cpu{e['cpu']} {who:12s} {e['ev'][:18]:18s} {txt}")
        print('\n'.join(tl))
lat.sort()
print('messages',n,'latency p50',lat[n//2],'p10',lat[n//10],'p90',lat[9*n//10])
print('CPU-us per message over [send, last delivery], both CPUs:')
for r,v in tot.most_common(): print(f'  {r:10s} {v/n:8.1f}')
