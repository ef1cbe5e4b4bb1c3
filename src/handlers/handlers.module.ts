import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { EchoHandler } from './builtin/echo.handler';
import { FailHandler } from './builtin/fail.handler';
import { NoopHandler } from './builtin/noop.handler';
import { SleepHandler } from './builtin/sleep.handler';
import { HandlerRegistry } from './handler-registry';

/** Every job handler is listed here; the registry finds them by their @JobHandler decorator. */
@Module({
  imports: [DiscoveryModule],
  providers: [HandlerRegistry, NoopHandler, EchoHandler, SleepHandler, FailHandler],
  exports: [HandlerRegistry],
})
export class HandlersModule {}
