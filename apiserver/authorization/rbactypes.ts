// The rbac.authorization.k8s.io/v1 shapes the authorizers read: the API's own types (api/rbac/v1.ts).

export { AUTOUPDATE_ANNOTATION, RBAC_GROUP } from "../../api/index.ts";
export type { AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject } from "../../api/index.ts";
