/** Where the CLI writes: stdout for results, stderr for diagnostics. */
import { redactText } from '../internal/index.js';

export interface Output {
  line(text: string): void;
  error(text: string): void;
}

/**
 * processOutput writes to the process streams. Every line is redacted on its way out: no URL's
 * user info or query token reaches a terminal, a JSON consumer or a log collector, whatever
 * message (ours, a server's, Node's) it came in.
 */
export const processOutput: Output = {
  line: (text) => {
    process.stdout.write(`${redactText(text)}\n`);
  },
  error: (text) => {
    process.stderr.write(`${redactText(text)}\n`);
  },
};
