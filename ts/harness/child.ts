// The child side of the process harness (cluster.ts): answers the parent's requests over IPC, each reply
// echoing the request's `seq` with `ok`; anything else a child sends is an event. A child whose parent
// goes away exits.

export function sendToParent(message: unknown): void {
  process.send?.(message);
}

export function serveParent<Request extends { cmd: string }>(
  handle: (request: Request) => Promise<Record<string, unknown>>
): void {
  process.on('message', (msg: Request & { seq: number }) => {
    handle(msg).then(
      (result) => sendToParent({ seq: msg.seq, ok: true, ...result }),
      (err: Error & { code?: string }) => sendToParent({ seq: msg.seq, ok: false, error: err.message, code: err.code }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
