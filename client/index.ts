// The client library every component uses. (Informers, work queues and leader election arrive with the controllers.)

export { newLogger, type Logger } from "./log.ts";
