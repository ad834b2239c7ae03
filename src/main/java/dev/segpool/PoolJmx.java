package dev.segpool;

import java.lang.management.ManagementFactory;
import javax.management.InstanceAlreadyExistsException;
import javax.management.JMException;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import javax.management.StandardMBean;

/** The JMX face of a pool: registers and unregisters its {@link SegmentPoolMXBean}. */
final class PoolJmx implements SegmentPoolMXBean {
    private final SegmentPool pool;
    private final ObjectName objectName;

    private PoolJmx(SegmentPool pool, ObjectName objectName) {
        this.pool = pool;
        this.objectName = objectName;
    }

    static ObjectName objectName(String poolName) {
        try {
            return new ObjectName("dev.segpool:type=SegmentPool,name=" + poolName);
        } catch (JMException e) {
            throw Errors.badSetting("name", poolName, "usable in a JMX ObjectName (" + e.getMessage() + ")");
        }
    }

    /** Registers the pool's MXBean; a name already registered is an {@link IllegalArgumentException}. */
    static PoolJmx register(SegmentPool pool) {
        ObjectName name = objectName(pool.name());
        PoolJmx bean = new PoolJmx(pool, name);
        try {
            ManagementFactory.getPlatformMBeanServer()
                    .registerMBean(new StandardMBean(bean, SegmentPoolMXBean.class, true), name);
        } catch (InstanceAlreadyExistsException e) {
            throw new IllegalArgumentException("a pool named '" + pool.name() + "' is already registered with JMX as "
                    + name + "; give each pool with jmx(true) its own name");
        } catch (JMException e) {
            throw new IllegalStateException("cannot register " + name + " with JMX", e);
        }
        return bean;
    }

    void unregister() {
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        try {
            if (server.isRegistered(objectName)) {
                server.unregisterMBean(objectName);
            }
        } catch (JMException e) {
            LeakTracker.logger().log(System.Logger.Level.WARNING, "cannot unregister " + objectName, e);
        }
    }

    @Override
    public String getName() {
        return pool.name();
    }

    @Override
    public long getReservedBytes() {
        return pool.totals().reservedBytes();
    }

    @Override
    public long getActiveBytes() {
        return pool.totals().activeBytes();
    }

    @Override
    public long getCachedBytes() {
        return pool.totals().cachedBytes();
    }

    @Override
    public long getFreeBytes() {
        return pool.totals().freeBytes();
    }

    @Override
    public int getThreadCaches() {
        return pool.totals().threadCaches();
    }

    @Override
    public int getChunks() {
        return pool.totals().chunks();
    }

    @Override
    public long getHugeBytes() {
        return pool.totals().hugeBytes();
    }

    @Override
    public long getCacheHits() {
        return pool.totals().cacheHits();
    }

    @Override
    public long getCacheMisses() {
        return pool.totals().cacheMisses();
    }

    @Override
    public int getOpenArenas() {
        return pool.totals().openArenas();
    }

    @Override
    public long getMaxMemory() {
        return pool.maxMemory();
    }

    @Override
    public long trim() {
        return pool.trim();
    }

    @Override
    public String dumpStats() {
        return pool.dumpStats();
    }
}
