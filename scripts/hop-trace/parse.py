import re,sys,collections
pat=re.compile(r'^\s*(.+?)-(\d+)\s+\(\s*(\d+|-+)\)\s+\[(\d+)\]\s+\S+\s+([\d.]+):\s+(\S+?):?\s(.*)$')
def events(fn):
    for line in open(fn):
        if line.startswith('#'): continue
        m=pat.match(line)
        if not m: continue
        comm,tid,tgid,cpu,ts,ev,rest=m.groups()
        if '(' in ev:
            rest=ev.split('(',1)[1]+' '+rest; ev=ev.split('(')[0]
        yield dict(comm=comm,tid=int(tid),tgid=int(tgid) if tgid.isdigit() else -1,cpu=int(cpu),t=float(ts),ev=ev,rest=rest)
if __name__=='__main__':
    c=collections.Counter()
    for e in events(sys.argv[1]):
        ev=e['ev']
        if ev.startswith('sys_') and '->' in e['rest']: ev+='_exit'
        c[(e['tgid'],e['tid'],e['comm'],ev)]+=1
    for k,v in sorted(c.items()):
        if v>50: print(k,v)
