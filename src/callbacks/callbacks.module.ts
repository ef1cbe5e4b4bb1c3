import { Module } from '@nestjs/common';
import { OutboundModule } from '../outbound/outbound.module';
import { PersistenceModule } from '../persistence/persistence.module';
import { CallbackDeliveryService } from './callback-delivery.service';

/** Delivery of completion callbacks; every worker runs it. */
@Module({
  imports: [PersistenceModule, OutboundModule],
  providers: [CallbackDeliveryService],
  exports: [CallbackDeliveryService],
})
export class CallbacksModule {}
