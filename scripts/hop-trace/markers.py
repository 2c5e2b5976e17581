# TEMPORARY diagnostics (README.md): adds trace_marker writes to a worktree's TypeScript; undo with git checkout ts/.
import os, sys, shutil
root=sys.argv[1]
shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'trace-mark.ts.in'), root + '/ts/trace-mark.ts')
subs={
 'ts/group/group.ts':[("    setImmediate(() => {\n      this.#stepScheduled = false;","    setImmediate(() => {\n      mark('immediate');\n      this.#stepScheduled = false;"),("import ","import { mark } from '../trace-mark.js';\nimport ")],
 'ts/group/view-engine.ts':[("this.runtime.fabric.onArrival([0], step);","this.runtime.fabric.onArrival([0], marking ? () => { mark('arrival'); step(); mark('arrival-end'); } : step);"),("import ","import { mark, marking } from '../trace-mark.js';\nimport ")],
 'ts/harness/group-process.ts':[("  view.setFloat64(8, nowMs(), true);","  view.setFloat64(8, nowMs(), true);\n  mark(`send ${k}`);"),("      if (r.delivered === 0) r.firstMs = t;","      mark(`deliver ${k}`);\n      if (r.delivered === 0) r.firstMs = t;"),("import ","import { mark } from '../trace-mark.js';\nimport ")],
 'ts/multicast/shard.ts':[("    const fabric = this.#p.fabric;\n    const [ackAt","    mark(ranges > 0 ? 'push data' : 'push acks');\n    const fabric = this.#p.fabric;\n    const [ackAt"),("import ","import { mark } from '../trace-mark.js';\nimport ")],
}
for p,l in subs.items():
    s=open(root+'/'+p).read()
    for a,b in l:
        assert a in s,(p,a); s=s.replace(a,b,1)
    open(root+'/'+p,'w').write(s)
