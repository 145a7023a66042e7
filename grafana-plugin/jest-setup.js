// Jest setup provided by Grafana scaffolding
import './.config/jest-setup';

// React 19 needs MessageChannel, which jsdom lacks. A timer-based stand-in keeps no handles open.
if (typeof global.MessageChannel === 'undefined') {
  class Port {
    onmessage = null;
    other = null;
    postMessage(data) {
      const target = this.other;
      setTimeout(() => target && target.onmessage && target.onmessage({ data }), 0);
    }
    close() {}
    start() {}
    addEventListener(type, fn) {
      if (type === 'message') {
        this.onmessage = fn;
      }
    }
    removeEventListener() {}
  }
  global.MessageChannel = class MessageChannel {
    constructor() {
      this.port1 = new Port();
      this.port2 = new Port();
      this.port1.other = this.port2;
      this.port2.other = this.port1;
    }
  };
}
