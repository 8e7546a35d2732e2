// POST /fhir/DiagnosticReport/{id}/$redeliver: an opinion whose delivery failed is queued again, and
// the delivery worker is woken rather than left to its next poll.
import type { Opinions } from '../opinion/opinions.js';
import type { DeliveryWorker } from '../writeback/delivery.js';
import type { Operation } from './operation.js';

export function redeliver(opinions: Opinions, delivery: DeliveryWorker): Operation {
  return {
    code: 'redeliver',
    methods: ['POST'],
    run: async ({ id }) => {
      const reply = await opinions.redeliver(id as string);
      delivery.nudge();
      return reply;
    },
  };
}
