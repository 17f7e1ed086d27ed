// The ServiceAccount controllers of kube-controller-manager: "serviceaccount", "root-ca-cert-publisher"
// and the legacy "serviceaccount-token".

export { ServiceAccountsController, setupServiceAccountsController, SERVICE_ACCOUNTS_TO_ENSURE } from "./serviceaccounts.ts";
export { RootCACertPublisher, setupRootCACertPublisher, ROOT_CA_CERT_CONFIGMAP_NAME, DESCRIPTION_ANNOTATION } from "./publisher.ts";
export { ServiceAccountTokensCleanup, TokenSecretController, setupTokensController } from "./tokens.ts";
