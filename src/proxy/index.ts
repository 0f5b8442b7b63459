export {
  createVerifyingRegistryHandler,
  type RegistryHandler,
  type VerifyingRegistryOptions,
} from './handler.js';
export {
  type RegistryProxyOptions,
  type RunningRegistryProxy,
  startRegistryProxy,
} from './server.js';
