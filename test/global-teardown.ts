// Stops what global-setup started.
export default async function globalTeardown(): Promise<void> {
  await Promise.all([globalThis.__testDatabase?.stop(), globalThis.__testHapi?.stop()]);
}
