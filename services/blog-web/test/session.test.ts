// The duplicate-tab guard with Node's BroadcastChannel standing in for the browser's: a tab started with a
// copy of a live tab's session gives up the refresh token; a tab alone (or reloaded) keeps it.
import { BroadcastChannel } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { guardDuplicateTabs, Session, SESSION_CHANNEL, SESSION_KEY, type SessionData } from "../src/app/session.js";
import { MemoryStore } from "./memory-store.js";


const HOLDER_KEY = `${SESSION_KEY}.holder`;
const signedIn: SessionData = { token: "a1", refreshToken: "r1", expiresAt: null, username: "alice" };
const channels: BroadcastChannel[] = [];

/** A tab: its storage (a copy of `from`'s when duplicated), its session, and the guard's check. */
function startTab(from?: MemoryStore) {
  const store = new MemoryStore();
  for (const [k, v] of from?.map ?? []) store.setItem(k, v);
  const session = new Session(store);
  const channel = new BroadcastChannel(SESSION_CHANNEL);
  channels.push(channel);
  const checked = guardDuplicateTabs(session, channel, store, 100);
  return { store, session, checked };
}

afterEach(() => {
  for (const c of channels.splice(0)) c.close();
});

describe("duplicate-tab guard", () => {
  it("a tab alone keeps its session and refresh token, and gets a holder id", async () => {
    const a = startTab();
    a.session.set(signedIn);
    await a.checked;
    expect(a.session.get()).toEqual(signedIn);
    expect(a.store.getItem(HOLDER_KEY)).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("a duplicated tab keeps the access token, drops the refresh token and takes a new holder id", async () => {
    const a = startTab();
    a.session.set(signedIn);
    await a.checked;
    const b = startTab(a.store);
    await b.checked;
    expect(b.session.get()).toEqual({ ...signedIn, refreshToken: null });
    expect(b.store.getItem(HOLDER_KEY)).not.toBe(a.store.getItem(HOLDER_KEY));
    // The original is untouched and a later tab copied from it is again the copy.
    expect(a.session.get()).toEqual(signedIn);
    const c = startTab(a.store);
    await c.checked;
    expect(c.session.get()?.refreshToken).toBeNull();
    expect(a.session.get()).toEqual(signedIn);
    // The copy, reloaded (same storage, the old page gone), is no one's duplicate.
    const before = b.store.getItem(HOLDER_KEY);
    channels[1]!.close();
    const b2 = startTab(b.store);
    await b2.checked;
    expect(b2.store.getItem(HOLDER_KEY)).toBe(before);
  });
});
