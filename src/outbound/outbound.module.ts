import { Module } from '@nestjs/common';
import { OutboundHttpClient } from './outbound-http.client';

/** Requests to URLs outside the service (HTTP targets, callbacks), all under the same safety rules. */
@Module({ providers: [OutboundHttpClient], exports: [OutboundHttpClient] })
export class OutboundModule {}
