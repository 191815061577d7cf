// Time is injected so that every time rule can be tested at any instant.
export type Clock = () => Date;
export const systemClock: Clock = () => new Date();
