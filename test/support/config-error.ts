// What loadConfig refuses, and how it says so.

import { expect } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";

/** Expects `name=value` to be refused with a ConfigError naming the variable first; returns it. */
export function expectRefused(name: string, value: string): ConfigError {
  let error: unknown;
  try {
    loadConfig({ [name]: value });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const refusal = error as ConfigError;
  expect(refusal.variable).toBe(name);
  expect(refusal.message.startsWith(`${name}: `)).toBe(true);
  return refusal;
}
