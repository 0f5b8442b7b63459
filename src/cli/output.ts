/** Where the CLI writes: stdout for results, stderr for diagnostics. */
import { redactJson, redactText } from '../transport/index.js';

export interface Output {
  line(text: string): void;
  error(text: string): void;
  /** json writes a value as one JSON document on stdout (`indent` spaces, or one line). */
  json(value: unknown, indent?: number): void;
}

/**
 * processOutput writes to the process streams. Every line, and every string of a JSON document,
 * is redacted on its way out: no URL's user info or query token reaches a terminal, a JSON
 * consumer or a log collector, whatever message (ours, a server's, Node's) it came in.
 */
export const processOutput: Output = {
  line: (text) => {
    process.stdout.write(`${redactText(text)}\n`);
  },
  error: (text) => {
    process.stderr.write(`${redactText(text)}\n`);
  },
  // each string redacted on its own: the JSON around it stays JSON
  json: (value, indent) => {
    process.stdout.write(`${redactJson(value, indent)}\n`);
  },
};
