// Kept in step with exporter/package.json by the release process (a test checks they match).
export const VERSION = '0.1.0';
