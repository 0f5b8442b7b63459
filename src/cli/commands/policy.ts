/**
 * `tufa policy check FILE`: every problem of a trust policy, with its JSON path.
 * `tufa policy explain IMAGE`: which rule governs an image, and why.
 */
import type { Command } from 'commander';
import { imageReference } from '../../oci/index.js';
import { problemText, TrustPolicy } from '../../verify/index.js';
import { EXIT } from '../exit.js';
import { checkFlagPath } from '../flags.js';
import type { Output } from '../output.js';

const POLICY_DEFAULT = () => process.env.TUFA_POLICY ?? 'tufa-policy.json';

export function addPolicyCommands(
  program: Command,
  out: Output,
  setCode: (n: number) => void,
): void {
  const policy = program.command('policy').description('check a trust policy and explain it');
  policy
    .command('check')
    .description('validate a trust policy file: report every problem with its JSON path')
    .argument('[file]', 'the policy (default: $TUFA_POLICY or tufa-policy.json)')
    .option('--json', 'machine-readable output', false)
    .action(async (file: string | undefined, o: { json: boolean }) => {
      const f = file ?? POLICY_DEFAULT();
      await checkFlagPath('policy check', f);
      const r = await TrustPolicy.checkFile(f);
      const warnings = r.policy?.warnings ?? [];
      if (o.json) {
        out.json({ file: f, valid: r.policy !== undefined, problems: r.problems, warnings }, 2);
      } else {
        for (const p of r.problems) out.error(problemText(f, p));
        for (const w of warnings) out.error(`warning: ${w}`);
        if (r.policy !== undefined) out.line(`${f}: valid, ${r.policy.rules.length} rules`);
        else out.error(`${f}: ${r.problems.length} problems`);
      }
      setCode(r.policy === undefined ? EXIT.usage : EXIT.ok);
    });
  policy
    .command('explain')
    .description('which rule of the trust policy governs an image, and why')
    .argument('<image>', 'docker://REF (default), oci:DIR:REF or oci-archive:FILE:REF')
    .option('--policy <file>', 'trust policy (JSON)', POLICY_DEFAULT())
    .option('--json', 'machine-readable output', false)
    .action(async (image: string, o: { policy: string; json: boolean }) => {
      await checkFlagPath('--policy', o.policy);
      const p = await TrustPolicy.load(o.policy);
      const name = imageReference(image).name;
      const rules = p.matching(name).map((rule) => {
        const [literal, stars] = TrustPolicy.specificity(rule);
        return {
          rule: `rules[${rule.index}]`,
          match: rule.match,
          source: TrustPolicy.describe(rule),
          literal,
          wildcards: -stars,
        };
      });
      const governing = rules[0];
      if (o.json) {
        out.json({ image, name, governedBy: governing ?? null, matching: rules }, 2);
      } else if (governing === undefined) {
        out.error(`${image}: no rule of ${o.policy} matches ${name}: denied (NO_POLICY)`);
      } else {
        out.line(
          `${image}: ${name} is governed by ${governing.rule} (${governing.match}): ${governing.source}`,
        );
        out.line(
          rules.length === 1
            ? '  the only rule that matches it'
            : `  the most specific of ${rules.length} matching rules (most literal characters, then fewest wildcards, then the first listed):`,
        );
        if (rules.length > 1) {
          for (const r of rules) {
            out.line(
              `  ${r.rule} ${r.match}: ${r.literal} literal characters, ${r.wildcards} wildcard characters (${r.source})`,
            );
          }
        }
      }
      setCode(governing === undefined ? EXIT.refused : EXIT.ok);
    });
}
