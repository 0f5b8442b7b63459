/** Where the CLI writes: stdout for results, stderr for diagnostics. */
export interface Output {
  line(text: string): void;
  error(text: string): void;
}

/** processOutput writes to the process streams. */
export const processOutput: Output = {
  line: (text) => {
    process.stdout.write(`${text}\n`);
  },
  error: (text) => {
    process.stderr.write(`${text}\n`);
  },
};
