import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { OutboundModule } from '../outbound/outbound.module';
import { EchoHandler } from './builtin/echo.handler';
import { FailHandler } from './builtin/fail.handler';
import { HttpHandler } from './builtin/http.handler';
import { NoopHandler } from './builtin/noop.handler';
import { SleepHandler } from './builtin/sleep.handler';
import { HandlerRegistry } from './handler-registry';

/** Every job handler is listed here; the registry finds them by their @JobHandler decorator. */
@Module({
  imports: [DiscoveryModule, OutboundModule],
  providers: [HandlerRegistry, NoopHandler, EchoHandler, SleepHandler, FailHandler, HttpHandler],
  exports: [HandlerRegistry],
})
export class HandlersModule {}
