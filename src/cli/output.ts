/** Where the CLI writes: stdout for results, stderr for diagnostics. */
import { escapeControls, redactJson, redactText } from '../transport/index.js';

export interface Output {
  line(text: string): void;
  error(text: string): void;
  /** json writes a value as one JSON document on stdout (`indent` spaces, or one line). */
  json(value: unknown, indent?: number): void;
}

/**
 * processOutput writes to the process streams. Every line, and every string of a JSON document,
 * is redacted on its way out: no URL's user info or query token reaches a terminal, a JSON
 * consumer or a log collector, whatever message (ours, a server's, Node's) it came in; and
 * every control character but tab and newline is escaped (a registry's string cannot drive the
 * terminal).
 */
export const processOutput: Output = {
  line: (text) => {
    process.stdout.write(`${escapeControls(redactText(text))}\n`);
  },
  error: (text) => {
    process.stderr.write(`${escapeControls(redactText(text))}\n`);
  },
  // each string redacted on its own: the JSON around it stays JSON
  json: (value, indent) => {
    process.stdout.write(`${escapeControls(redactJson(value, indent))}\n`);
  },
};
