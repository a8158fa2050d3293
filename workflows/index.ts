// Bundle entry for the worker: every workflow dbops runs is exported here.
export { pingWorkflow } from './ping';
export { milvusMaintenanceWorkflow } from './milvus-maintenance';
export { partitionMaintenanceWorkflow } from './partition-maintenance';
