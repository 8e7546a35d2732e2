// A process that records case outcomes in a loop, to be killed (SIGKILL) in the middle of it by
// test/outcome-ledger.test.ts: each case is opened, delivered, then amended, and every step is
// recorded twice (a re-run hook). Run: node dist/test/outcome-writer.js <mongodb-uri> <database> <cases>
import mongoose from 'mongoose';
import { OutcomeLedger } from '../src/outcomes/ledger.js';
import { caseStory } from './outcome-cases.js';

const [uri, databaseName, count] = process.argv.slice(2);
const connection = await mongoose.createConnection(uri, { dbName: databaseName }).asPromise();
const ledger = new OutcomeLedger(connection, 500);
await ledger.recover();
process.stdout.write('ready\n');
for (let i = 0; i < Number(count); i++) {
  for (const facts of caseStory(i)) {
    await ledger.record(`case-${i}`, async () => facts);
    await ledger.record(`case-${i}`, async () => facts);
  }
}
await connection.close();
