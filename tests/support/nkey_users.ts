/**
 * NATS nkey users for credentials tests: a user's `.creds` text and the server config lines that admit it.
 * @module
 */
import { nkeys } from "@nats-io/transport-node";

/** A JWT of the right shape: without an operator the server checks the nkey and does not read it. */
const JWT = "eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2lnbmF0dXJl";

/** `.creds` text presenting `seed`. */
export function credsText(seed: string): string {
  return `-----BEGIN NATS USER JWT-----\n${JWT}\n------END NATS USER JWT------\n\n` +
    `-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
}

/** A new user nkey and its `.creds` text. */
export function nkeyUser(): { publicKey: string; creds: string } {
  const kp = nkeys.createUser();
  return { publicKey: kp.getPublicKey(), creds: credsText(new TextDecoder().decode(kp.getSeed())) };
}

/** nats-server config lines admitting only the user `publicKey`. */
export const admitting = (publicKey: string): string[] => [
  `authorization { users = [ { nkey: ${publicKey} } ] }`,
];
