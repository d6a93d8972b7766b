export const twice = (s: string): string => s + s;
