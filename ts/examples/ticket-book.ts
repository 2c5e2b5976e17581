// The seed's example (DESIGN.md §8): a deterministic replicated state machine of ticket bookings. Two
// members booking the same ticket at the same moment resolve the same way everywhere: the command ordered
// first wins at every replica, and every replica answers the losing caller `false`. `book` and `release`
// change state, so they run only as ordered commands; the static `queries` names the read-only methods that
// `query(member)` may run at one replica.

import { decodeValue, encodeValue } from '../objects/codec.js';

export class TicketBook {
  static readonly queries = ['holder', 'count', 'bookings'] as const;

  #booked = new Map<string, string>();

  /** Ordered: books `ticket` for `customer` unless someone holds it; true when this call got it. */
  book(ticket: string, customer: string): boolean {
    if (this.#booked.has(ticket)) return false;
    this.#booked.set(ticket, customer);
    return true;
  }

  /** Ordered: gives a ticket back; true when `customer` held it. */
  release(ticket: string, customer: string): boolean {
    if (this.#booked.get(ticket) !== customer) return false;
    this.#booked.delete(ticket);
    return true;
  }

  /** A query: who holds `ticket` (null when free). */
  holder(ticket: string): string | null {
    return this.#booked.get(ticket) ?? null;
  }

  /** A query: how many tickets are booked. */
  count(): number {
    return this.#booked.size;
  }

  /** A query: every booking, sorted by ticket. */
  bookings(): Array<[string, string]> {
    return [...this.#booked].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  snapshot(): Uint8Array {
    return encodeValue(this.bookings());
  }

  static restore(bytes: Uint8Array): TicketBook {
    const book = new TicketBook();
    for (const [t, c] of decodeValue(bytes) as Array<[string, string]>) book.#booked.set(t, c);
    return book;
  }
}
