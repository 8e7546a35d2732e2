// Stops the database that global-setup started.
export default async function globalTeardown(): Promise<void> {
  await globalThis.__testDatabase?.stop();
}
