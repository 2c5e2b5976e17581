// The example classes that ship with squall, by the name a configuration file gives them
// ("type": "TicketBook"): `squall node` resolves subgroup types against these.

import { KeyValueStore } from './key-value-store.js';
import { TicketBook } from './ticket-book.js';

export const EXAMPLE_TYPES = { TicketBook, KeyValueStore } as const;
