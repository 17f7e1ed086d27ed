// The apiserver's public surface.

export { ApiServer, SERVER_VERSION, type ApiServerOptions } from "./server.ts";
export { TokenFileAuthenticator, X509Authenticator, parseTokenFile, type Authenticator, type UserInfo } from "./auth.ts";
export { ApiError, errors, type Status } from "./errors.ts";
export { openBackend, type Backend } from "./storage/index.ts";
export { newApiserverMetrics } from "./metrics.ts";
