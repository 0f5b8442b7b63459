export { OciError, type OciErrorCode } from './errors.js';
export { Reference } from './reference.js';
