export {
  type BuildOptions,
  buildRepository,
  consistentTargetName,
  type RoleSigning,
  signEnvelope,
  type TargetInput,
} from './build.js';
export { writeTree } from './publish.js';
export { KeyObjectSigner, publicKeyOf, type Signer } from './signer.js';
